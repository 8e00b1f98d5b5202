SELECT fingerprint, last_version, positions, commit_seq
FROM es_idempotency
WHERE stream_id = ?1 AND idempotency_key = ?2
