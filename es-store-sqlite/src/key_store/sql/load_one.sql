SELECT subject_id, wrapped_key, master_key_id, key_version, forgotten_at
FROM es_subject_keys
WHERE subject_id = ?1
