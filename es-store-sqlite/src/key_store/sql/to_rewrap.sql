SELECT subject_id, wrapped_key, master_key_id, key_version, forgotten_at
FROM es_subject_keys
WHERE forgotten_at IS NULL AND master_key_id <> ?1
ORDER BY subject_id
LIMIT ?2
