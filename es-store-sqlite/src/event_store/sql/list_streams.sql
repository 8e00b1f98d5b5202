-- Streams after ?1 (NULL: from the first) in the byte order of their ids (the
-- BINARY collation), with when their last event was recorded.
SELECT s.stream_id, s.version, e.recorded_at
FROM es_streams s
JOIN es_events e ON e.stream_id = s.stream_id AND e.version = s.version
WHERE ?1 IS NULL OR s.stream_id > ?1
ORDER BY s.stream_id
LIMIT ?2
