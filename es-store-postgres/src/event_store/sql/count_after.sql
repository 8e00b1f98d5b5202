-- After read_horizon.sql: the events a read from ($3, $4) would return now.
SELECT count(*)
FROM es_events
WHERE (transaction_id, position) > ($3::text::xid8, $4)
  AND transaction_id < (SELECT xid FROM horizon)
