-- After read_horizon.sql: only rows below the read horizon. A transaction that
-- drew a smaller position but commits later cannot be skipped: nothing at or
-- after an open appender is returned until it has committed or aborted.
-- The xid travels as text (`xid`), but the order is the xid8 column's own:
-- ordering by the text would put transaction 100000 before 99999.
-- Columns by index in event_store.rs (recorded_event); the headers are NULL
-- when empty, which is the usual case, so that most rows need no JSON parse.
SELECT position, transaction_id::text AS xid, stream_id, version, event_id,
       event_type, schema_version, payload, recorded_at, correlation_id, causation_id,
       idempotency_key, NULLIF(headers, '{}'::jsonb)::text AS headers
FROM es_events
WHERE (transaction_id, position) > ($3::text::xid8, $4)
  AND transaction_id < (SELECT xid FROM horizon)
ORDER BY es_events.transaction_id, es_events.position
LIMIT $5
