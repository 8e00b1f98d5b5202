-- Data keys for crypto-shredding: one per subject, stored wrapped under a master
-- key that never lives in the database. Forgetting a subject deletes the wrapped
-- key and keeps a tombstone row with the time.
CREATE TABLE es_subject_keys (
    subject_id text PRIMARY KEY,
    -- NULL once the subject is forgotten.
    wrapped_key bytea,
    -- Which master key wrapped it, so a rotation can find what to re-wrap.
    master_key_id text,
    key_version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    forgotten_at timestamptz,
    CHECK ((wrapped_key IS NULL) = (forgotten_at IS NOT NULL))
);
