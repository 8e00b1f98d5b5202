-- The newest stored transaction id against the cluster's next one. A database
-- restored into a younger cluster has stored ids from the cluster's future:
-- new appends would sort before old events and subscribers would skip them.
SELECT (SELECT transaction_id::text FROM es_events
        ORDER BY transaction_id DESC LIMIT 1) AS max_stored,
       pg_snapshot_xmax(pg_current_snapshot())::text AS next_xid
