WITH prior AS (
    SELECT fingerprint, last_version, positions, transaction_id
    FROM es_idempotency
    WHERE $13::text IS NOT NULL AND stream_id = $1 AND idempotency_key = $13
),
-- The appender mark ($15, $16: src/appender.rs), then the transaction id,
-- in that order by data dependency: xact reads mark's row before it calls
-- pg_current_xact_id(), and the bump takes its id from xact, so nothing
-- draws an id before the mark (read_horizon.sql relies on it). Nothing
-- above writes; the bump is the first write, the events' transaction_id
-- default comes after it. A deduplicated append (prior found) takes neither.
mark AS MATERIALIZED (
    SELECT pg_advisory_xact_lock_shared($15, $16) AS taken
),
xact AS MATERIALIZED (
    SELECT pg_current_xact_id() AS xid FROM mark
),
