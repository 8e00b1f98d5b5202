-- Takes the appender mark: the shared transaction-level advisory lock on
-- ($1, $2), held until the transaction ends. Refused (false, nothing taken)
-- when the transaction already has a transaction id and does not hold the
-- mark: a reader may already have judged it a transaction that never appends
-- and read past it (see event_store/sql/read_horizon.sql). pg_locks is only
-- read in that case, never for a transaction that has not written yet.
SELECT CASE
    WHEN pg_current_xact_id_if_assigned() IS NULL
      OR EXISTS (
          SELECT 1 FROM pg_locks
          WHERE pid = pg_backend_pid() AND locktype = 'advisory'
            AND classid = $1::oid AND objid = $2::oid AND objsubid = 2 AND granted
      )
    THEN pg_advisory_xact_lock_shared($1, $2) IS NOT NULL
    ELSE false
END AS marked
