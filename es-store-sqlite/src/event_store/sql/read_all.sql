-- Appends are serialized by the write lock and positions drawn in commit order,
-- so every committed event is visible and no later commit can sort before it:
-- the global log needs no horizon. The row-value comparison walks
-- es_events_global_order from the checkpoint.
SELECT position, commit_seq, stream_id, version, event_id, event_type, schema_version,
       payload, recorded_at, correlation_id, causation_id, idempotency_key, headers
FROM es_events
WHERE (commit_seq, position) > (?1, ?2)
ORDER BY commit_seq, position
LIMIT ?3
