-- Compare and set: only the key as it was read is replaced.
UPDATE es_subject_keys
SET wrapped_key = ?5, master_key_id = ?6
WHERE subject_id = ?1 AND key_version = ?2 AND master_key_id = ?3 AND wrapped_key = ?4
  AND forgotten_at IS NULL
