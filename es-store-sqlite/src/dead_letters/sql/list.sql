SELECT projection, event_id, checkpoint, stream_id, event_type, error, recorded_at, replay
FROM es_dead_letters
WHERE projection = ?1
ORDER BY recorded_at, event_id
