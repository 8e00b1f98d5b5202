-- Streams after $1 (NULL: from the first) in the byte order of their ids, with
-- when their last event was recorded. `COLLATE "C"` is byte order whatever the
-- database's collation: every store lists streams in the same order.
SELECT s.stream_id, s.version, e.recorded_at
FROM es_streams s
JOIN es_events e ON e.stream_id = s.stream_id AND e.version = s.version
WHERE $1::text IS NULL OR s.stream_id COLLATE "C" > $1::text COLLATE "C"
ORDER BY s.stream_id COLLATE "C"
LIMIT $2
