-- Events a projection could not decode or apply, kept until retried or skipped.
-- `event_id` is the UUID's 16 bytes, `checkpoint` its text form, `recorded_at`
-- INTEGER microseconds since the Unix epoch, as in `es_events`.
CREATE TABLE es_dead_letters (
    projection TEXT NOT NULL,
    event_id BLOB NOT NULL CHECK (length(event_id) = 16),
    checkpoint TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    error TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (projection, event_id)
) STRICT;
