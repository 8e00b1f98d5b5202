-- Data keys for crypto-shredding: one per subject, stored wrapped under a master
-- key that never lives in the database. Forgetting a subject deletes the wrapped
-- key and keeps a tombstone row with the time. Every connection runs with
-- `PRAGMA secure_delete = ON`, so the deleted key's bytes are overwritten with
-- zeros in the page, not left behind in free space (see `SqliteStore`).
--
-- Times are RFC 3339 text in UTC, e.g. 2026-11-23T10:00:00.123Z.
CREATE TABLE es_subject_keys (
    subject_id TEXT PRIMARY KEY NOT NULL,
    -- NULL once the subject is forgotten.
    wrapped_key BLOB NULL,
    -- Which master key wrapped it, so a rotation can find what to re-wrap.
    master_key_id TEXT,
    key_version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    forgotten_at TEXT NULL,
    CHECK ((wrapped_key IS NULL) = (forgotten_at IS NOT NULL))
) STRICT;
