ins AS (
    INSERT INTO es_events (
        stream_id, version, event_id, event_type, schema_version, payload,
        recorded_at, correlation_id, causation_id, idempotency_key, headers
    )
    SELECT $1, bump.base + e.ord, e.event_id, e.event_type, e.schema_version, e.payload,
           e.recorded_at, e.correlation_id, e.causation_id, e.idempotency_key, e.headers::jsonb
    FROM bump
    CROSS JOIN UNNEST(
        $4::uuid[], $5::text[], $6::int4[], $7::bytea[], $8::timestamptz[],
        $9::uuid[], $10::uuid[], $11::text[], $12::text[]
    ) WITH ORDINALITY AS e(
        event_id, event_type, schema_version, payload, recorded_at,
        correlation_id, causation_id, idempotency_key, headers, ord
    )
    RETURNING position, version, transaction_id
),
appended AS (
    SELECT max(version) AS last_version,
           array_agg(position ORDER BY version) AS positions,
           (array_agg(transaction_id))[1] AS transaction_id
    FROM ins
    HAVING count(*) > 0
),
claim AS (
    -- A concurrent first use of the key makes this a unique violation, which
    -- rolls the whole append back; the caller then reads the key's record.
    INSERT INTO es_idempotency (
        stream_id, idempotency_key, fingerprint, last_version, positions, transaction_id
    )
    SELECT $1, $13, $14, last_version, positions, transaction_id
    FROM appended
    WHERE $13::text IS NOT NULL
    RETURNING 1
)
SELECT false AS deduplicated, last_version, positions,
       transaction_id::text AS xid, NULL::bytea AS fingerprint
FROM appended
UNION ALL
SELECT true, last_version, positions, transaction_id::text, fingerprint
FROM prior
