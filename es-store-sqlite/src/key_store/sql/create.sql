-- First writer wins; a tombstone is replaced only to re-admit a forgotten
-- subject with a higher key version. No row comes back when the stored key (or
-- tombstone) stays.
INSERT INTO es_subject_keys (subject_id, wrapped_key, master_key_id, key_version)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (subject_id) DO UPDATE
SET wrapped_key = excluded.wrapped_key,
    master_key_id = excluded.master_key_id,
    key_version = excluded.key_version,
    created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    forgotten_at = NULL
WHERE ?5 AND es_subject_keys.forgotten_at IS NOT NULL
  AND es_subject_keys.key_version < excluded.key_version
RETURNING subject_id, wrapped_key, master_key_id, key_version, forgotten_at
