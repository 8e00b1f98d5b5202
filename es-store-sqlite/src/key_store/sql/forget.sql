-- Destroys the wrapped key and keeps a tombstone; a subject never seen gets a
-- tombstone too, so that data written for it later is refused. No row comes
-- back when the subject was already forgotten. With secure_delete on, the old
-- key's bytes are zeroed in the page, not left in free space.
INSERT INTO es_subject_keys (subject_id, wrapped_key, master_key_id, key_version, forgotten_at)
VALUES (?1, NULL, NULL, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
ON CONFLICT (subject_id) DO UPDATE
SET wrapped_key = NULL,
    master_key_id = NULL,
    forgotten_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE es_subject_keys.forgotten_at IS NULL
RETURNING key_version
