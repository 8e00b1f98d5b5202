-- ?1 is a JSON array of subject ids.
SELECT subject_id, wrapped_key, master_key_id, key_version, forgotten_at
FROM es_subject_keys
WHERE subject_id IN (SELECT value FROM json_each(?1))
