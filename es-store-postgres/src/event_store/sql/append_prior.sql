WITH prior AS (
    SELECT fingerprint, last_version, positions, transaction_id
    FROM es_idempotency
    WHERE $13::text IS NOT NULL AND stream_id = $1 AND idempotency_key = $13
),
