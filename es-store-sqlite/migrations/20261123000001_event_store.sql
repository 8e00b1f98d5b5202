-- The event store: streams, events, idempotency records and snapshots.
--
-- Every append runs in one `BEGIN IMMEDIATE` transaction: it holds the
-- database's single write lock from its first statement to its commit, so
-- appends are serialized, positions are assigned in commit order, and the
-- global log needs no read horizon. Times the store must return exactly
-- (`recorded_at`, `taken_at`) are INTEGER microseconds since the Unix epoch,
-- UTC: exact over chrono's whole range, unlike text. All tables are STRICT, so a
-- value of the wrong type is an error instead of a silent conversion.

-- One row per stream: its current version. An append reads it under the write
-- lock and writes it back guarded by the value it read.
CREATE TABLE es_streams (
    stream_id TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0)
) STRICT;

CREATE TABLE es_events (
    -- The rowid. AUTOINCREMENT never reuses a position, even one whose row was
    -- deleted; a rolled-back append rolls its draw back too, so positions are
    -- gap-free and assigned in commit order.
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The append that wrote the event: one value per batch, increasing with
    -- every append (the batch's first position), so `Checkpoint { commit,
    -- position }` order is position order.
    commit_seq INTEGER NOT NULL,
    stream_id TEXT NOT NULL REFERENCES es_streams (stream_id),
    version INTEGER NOT NULL CHECK (version > 0),
    event_id BLOB NOT NULL CHECK (length(event_id) = 16),
    event_type TEXT NOT NULL,
    schema_version INTEGER NOT NULL CHECK (schema_version >= 0),
    payload BLOB NOT NULL,
    recorded_at INTEGER NOT NULL,
    correlation_id BLOB CHECK (correlation_id IS NULL OR length(correlation_id) = 16),
    causation_id BLOB CHECK (causation_id IS NULL OR length(causation_id) = 16),
    idempotency_key TEXT,
    -- A JSON object of string values.
    headers TEXT NOT NULL DEFAULT '{}',
    -- The backstop against any bug above: two events can never share a version.
    -- (The table's primary key is the position, which must be the rowid for
    -- AUTOINCREMENT.)
    UNIQUE (stream_id, version)
) STRICT;

CREATE INDEX es_events_global_order ON es_events (commit_seq, position);
CREATE UNIQUE INDEX es_events_event_id ON es_events (event_id);

-- The command log for idempotent appends: the first result per (stream, key).
-- Keys carry no personal data; rows older than the retention are pruned.
CREATE TABLE es_idempotency (
    stream_id TEXT NOT NULL REFERENCES es_streams (stream_id),
    idempotency_key TEXT NOT NULL,
    fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),
    last_version INTEGER NOT NULL,
    -- The positions of the first append, as a JSON array.
    positions TEXT NOT NULL,
    commit_seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (stream_id, idempotency_key)
) STRICT;

CREATE INDEX es_idempotency_created_at ON es_idempotency (created_at);

-- The latest snapshot per stream.
CREATE TABLE es_snapshots (
    stream_id TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    taken_at INTEGER NOT NULL
) STRICT;
