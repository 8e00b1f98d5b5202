-- What holds the read horizon back: events committed but not yet readable because
-- an older transaction is still open, and the open writing transactions, oldest
-- (the one holding the horizon) first.
SELECT
    (SELECT count(*) FROM es_events
     WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) AS waiting_events,
    a.pid,
    a.state,
    EXTRACT(EPOCH FROM (now() - a.xact_start))::float8 AS transaction_age_secs,
    left(a.query, 500) AS query,
    a.application_name
FROM (SELECT 1) AS one
LEFT JOIN pg_stat_activity a
    ON a.backend_xid IS NOT NULL
   AND a.pid <> pg_backend_pid()
ORDER BY a.xact_start NULLS LAST
LIMIT 10
