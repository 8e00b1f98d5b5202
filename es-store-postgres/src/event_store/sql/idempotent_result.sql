SELECT fingerprint, last_version, positions, transaction_id::text AS xid
FROM es_idempotency
WHERE stream_id = $1 AND idempotency_key = $2
