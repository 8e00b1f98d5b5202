-- The event store: streams, events, idempotency records and snapshots.

-- One row per stream: its current version. Appends bump it relatively
-- (version = version + n) in the same statement that inserts the events, so a
-- version is never written back from a value read earlier.
CREATE TABLE es_streams (
    stream_id text PRIMARY KEY,
    version bigint NOT NULL CHECK (version > 0),
    -- The transaction that wrote the stream's latest events. An append only
    -- proceeds when its own transaction id is above this one, so a stream's
    -- events are in version order in the global log too: a transaction that drew
    -- its id first but took the stream's row lock second retries instead.
    last_xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);

CREATE TABLE es_events (
    -- Unique and increasing in draw order, not in commit order.
    position bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing transaction. Readers see only rows whose transaction is below
    -- the oldest transaction still running, and order by (transaction_id,
    -- position): no reader ever skips a row that commits late.
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id text NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    schema_version integer NOT NULL,
    payload bytea NOT NULL,
    recorded_at timestamptz NOT NULL,
    correlation_id uuid,
    causation_id uuid,
    idempotency_key text,
    headers jsonb NOT NULL DEFAULT '{}',
    -- The backstop against any bug above: two events can never share a version.
    PRIMARY KEY (stream_id, version)
);

CREATE UNIQUE INDEX es_events_global_order ON es_events (transaction_id, position);
CREATE UNIQUE INDEX es_events_event_id ON es_events (event_id);

-- One wake-up per appending statement (one statement per append), not per row.
CREATE FUNCTION es_notify_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('es_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER es_events_notify
    AFTER INSERT ON es_events
    FOR EACH STATEMENT EXECUTE FUNCTION es_notify_append();

-- The command log for idempotent appends: the first result per (stream, key).
-- Keys carry no personal data; rows older than the retention are pruned.
CREATE TABLE es_idempotency (
    stream_id text NOT NULL,
    idempotency_key text NOT NULL,
    fingerprint bytea NOT NULL,
    last_version bigint NOT NULL,
    positions bigint[] NOT NULL,
    transaction_id xid8 NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, idempotency_key)
);

CREATE INDEX es_idempotency_created_at ON es_idempotency (created_at);

-- The latest snapshot per stream.
CREATE TABLE es_snapshots (
    stream_id text PRIMARY KEY,
    version bigint NOT NULL,
    schema_version integer NOT NULL,
    payload bytea NOT NULL,
    taken_at timestamptz NOT NULL
);
