-- Columns by index in event_store.rs (recorded_event); the headers are NULL
-- when empty, which is the usual case, so that most rows need no JSON parse.
SELECT position, transaction_id::text AS xid, stream_id, version, event_id,
       event_type, schema_version, payload, recorded_at, correlation_id, causation_id,
       idempotency_key, NULLIF(headers, '{}'::jsonb)::text AS headers
FROM es_events
WHERE stream_id = $1 AND version > $2
ORDER BY version
LIMIT $3
