-- Only rows of transactions below the oldest one still running: a transaction
-- that drew a smaller position but commits later cannot be skipped, because
-- nothing after it is returned until it has committed or aborted.
-- The xid travels as text (`xid`), but the order is the xid8 column's own:
-- ordering by the text would put transaction 100000 before 99999.
SELECT position, transaction_id::text AS xid, stream_id, version, event_id,
       event_type, schema_version, payload, recorded_at, correlation_id, causation_id,
       idempotency_key, headers::text AS headers
FROM es_events
WHERE (transaction_id, position) > ($1::text::xid8, $2)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY es_events.transaction_id, es_events.position
LIMIT $3
