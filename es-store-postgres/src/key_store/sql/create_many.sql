-- `create.sql` for a batch of distinct subjects, in subject order (so that two
-- batches lock rows in the same order and cannot deadlock).
INSERT INTO es_subject_keys AS k (subject_id, wrapped_key, master_key_id, key_version)
SELECT subject_id, wrapped_key, master_key_id, key_version
FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::int4[])
    AS i(subject_id, wrapped_key, master_key_id, key_version)
ORDER BY subject_id
ON CONFLICT (subject_id) DO UPDATE
SET wrapped_key = EXCLUDED.wrapped_key,
    master_key_id = EXCLUDED.master_key_id,
    key_version = EXCLUDED.key_version,
    created_at = now(),
    forgotten_at = NULL
WHERE $5 AND k.forgotten_at IS NOT NULL AND k.key_version < EXCLUDED.key_version
RETURNING subject_id, wrapped_key, master_key_id, key_version, forgotten_at
