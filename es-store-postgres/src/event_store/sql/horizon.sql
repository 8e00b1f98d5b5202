-- After read_horizon.sql: what holds the read horizon back. waiting_events:
-- committed events at or above it, that no subscriber can read yet. Then the
-- appenders that hold it: marked transactions of the snapshot's xip still
-- open (same backend, same transaction id), oldest first; the first one is
-- the horizon. One row with NULL holder columns when none is open.
,
horizon_holders AS (
    SELECT a.pid, a.state, a.xact_start, a.query, a.application_name
    FROM horizon_locks AS t
    JOIN pg_stat_activity AS a
      ON a.pid = t.pid AND a.backend_xid::text::bigint = t.xid32
    WHERE t.locktype = 'transactionid'
      AND EXISTS (
          SELECT 1 FROM horizon_locks AS m
          WHERE m.locktype = 'advisory' AND m.virtualtransaction = t.virtualtransaction
      )
      AND t.xid32 IN (
          SELECT (x::text::numeric % 4294967296)::bigint
          FROM horizon_snapshot AS h, pg_snapshot_xip(h.s) AS x
      )
)
SELECT
    (SELECT count(*) FROM es_events
     WHERE transaction_id >= (SELECT xid FROM horizon)) AS waiting_events,
    a.pid,
    a.state,
    EXTRACT(EPOCH FROM (now() - a.xact_start))::float8 AS transaction_age_secs,
    left(a.query, 500) AS query,
    a.application_name
FROM (SELECT 1) AS one
LEFT JOIN horizon_holders AS a ON true
ORDER BY a.xact_start NULLS LAST
LIMIT 10
