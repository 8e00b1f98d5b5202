INSERT INTO es_dead_letters
    (projection, event_id, checkpoint, stream_id, event_type, error, recorded_at, replay)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
-- One letter per event: the first error and time stay; it is a replay's
-- only while every recording was.
ON CONFLICT (projection, event_id) DO UPDATE
SET replay = es_dead_letters.replay AND excluded.replay
