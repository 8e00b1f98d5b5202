-- Destroys the wrapped key and keeps a tombstone; a subject never seen gets a
-- tombstone too, so that data written for it later is refused. No row comes
-- back when the subject was already forgotten. Every process caching the
-- subject's key is told on commit (channel `es_forgotten`).
INSERT INTO es_subject_keys AS k (subject_id, wrapped_key, master_key_id, key_version, forgotten_at)
VALUES ($1, NULL, NULL, 1, now())
ON CONFLICT (subject_id) DO UPDATE
SET wrapped_key = NULL, master_key_id = NULL, forgotten_at = now()
WHERE k.forgotten_at IS NULL
RETURNING key_version, pg_notify('es_forgotten', $1) IS NULL AS notified
