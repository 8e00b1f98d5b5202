INSERT INTO es_dead_letters
    (projection, event_id, checkpoint, stream_id, event_type, error, recorded_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (projection, event_id) DO NOTHING
