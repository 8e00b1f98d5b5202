-- The stream's version as its events say: what the (stream_id, version)
-- backstop saw when it refused an insert.
SELECT coalesce(max(version), 0) FROM es_events WHERE stream_id = ?1
