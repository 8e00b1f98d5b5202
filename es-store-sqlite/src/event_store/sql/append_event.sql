INSERT INTO es_events (
    commit_seq, stream_id, version, event_id, event_type, schema_version, payload,
    recorded_at, correlation_id, causation_id, idempotency_key, headers
)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
RETURNING position
