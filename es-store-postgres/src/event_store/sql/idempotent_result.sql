SELECT fingerprint, last_version, positions, transaction_id::text AS transaction_id
FROM es_idempotency
WHERE stream_id = $1 AND idempotency_key = $2
