-- The newest stored transaction id against the cluster's next one. A database
-- restored into a younger cluster has stored ids from the cluster's future:
-- new appends would sort before old events and subscribers would skip them.
-- (Ordered by the xid8 column itself: its text form sorts "92466" after
-- "900000000000".)
SELECT (SELECT e.transaction_id FROM es_events AS e
        ORDER BY e.transaction_id DESC LIMIT 1)::text AS max_stored,
       pg_snapshot_xmax(pg_current_snapshot())::text AS next_xid
