-- First writer wins; a tombstone is replaced only to re-admit a forgotten
-- subject with a higher key version.
INSERT INTO es_subject_keys AS k (subject_id, wrapped_key, master_key_id, key_version)
VALUES ($1, $2, $3, $4)
ON CONFLICT (subject_id) DO UPDATE
SET wrapped_key = EXCLUDED.wrapped_key,
    master_key_id = EXCLUDED.master_key_id,
    key_version = EXCLUDED.key_version,
    created_at = now(),
    forgotten_at = NULL
WHERE $5 AND k.forgotten_at IS NOT NULL AND k.key_version < EXCLUDED.key_version
RETURNING subject_id, wrapped_key, master_key_id, key_version, forgotten_at
