-- Events a projection could not decode or apply, kept until retried or skipped.
CREATE TABLE es_dead_letters (
    projection text NOT NULL,
    event_id uuid NOT NULL,
    checkpoint text NOT NULL,
    stream_id text NOT NULL,
    event_type text NOT NULL,
    error text NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (projection, event_id)
);
