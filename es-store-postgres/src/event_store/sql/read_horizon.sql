-- The read horizon H of this statement: the global read returns only rows
-- with transaction_id < H, in (transaction_id, position) order, and never
-- one that commits later below a row it returned. Only transactions that
-- append events may hold H back. This fragment opens the statement's WITH;
-- $1 and $2 are the appender mark's keys (src/appender.rs).
-- Why it never skips: the comment at the end.
WITH horizon_snapshot AS MATERIALIZED (
    SELECT pg_current_snapshot() AS s
),
horizon_locks AS MATERIALIZED (
    SELECT l.locktype, l.virtualtransaction, l.pid,
           l.transactionid::text::bigint AS xid32
    FROM pg_locks AS l
    WHERE (l.locktype = 'advisory' AND l.classid = $1::oid AND l.objid = $2::oid
           AND l.objsubid = 2
           -- Marks are per database: an appender of this log is connected to it.
           AND l.database = (SELECT d.oid FROM pg_database AS d
                             WHERE d.datname = current_database()))
       OR (l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock')
),
horizon_unmarked AS MATERIALIZED (
    -- The ids whose lock a backend holds without the mark.
    SELECT coalesce(array_agg(t.xid32), '{}') AS xids
    FROM horizon_locks AS t
    WHERE t.locktype = 'transactionid' AND t.pid IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM horizon_locks AS m
          WHERE m.locktype = 'advisory'
            AND (m.virtualtransaction = t.virtualtransaction OR m.pid IS NULL)
      )
),
horizon AS MATERIALIZED (
    SELECT CASE
        WHEN pg_is_in_recovery() THEN pg_snapshot_xmin(h.s)
        ELSE least(pg_snapshot_xmax(h.s), (
            SELECT min(x) FROM pg_snapshot_xip(h.s) AS x
            WHERE CASE
                WHEN (x::text::numeric % 4294967296)::bigint
                     = ANY ((SELECT u.xids FROM horizon_unmarked AS u)::bigint[])
                THEN pg_xact_status(x) IS DISTINCT FROM 'in progress'
                ELSE true
            END
        ))
    END AS xid
    FROM horizon_snapshot AS h
)

-- The mark. An appender takes a shared transaction-level advisory lock on
-- ($1, $2) before its transaction draws an id, and holds it to the end (the
-- append statement, append_prior.sql; mark_appender, which refuses a
-- transaction that has an id and no mark). PostgreSQL takes a transaction's
-- ExclusiveLock on its own id after drawing the id, and at the end releases
-- it before the advisory locks. So at any instant an appender that holds the
-- lock on its id also holds the mark.
--
-- The rule. S is the statement's snapshot (pg_current_snapshot(), taken
-- before the statement ran). H = least(xmax(S), the smallest x in xip(S) that
-- may be an appender). x counts as a non-appender only when the one read of
-- pg_locks below (a consistent copy of the lock table, taken after S) shows
-- the lock on x held by a backend without the mark, and x is still in
-- progress after that read (the CASE reads the locks first). Such an x had
-- its id and no mark at that instant: it has no surviving events (a mark
-- lost by rolling back to a savepoint takes the events written under it
-- along) and can write none, since it can no longer be marked.
--
-- Why nothing is skipped: a row with transaction_id < H belongs either to a
-- transaction outside xip(S) below xmax(S), which ended before S (S sees
-- the row if it committed, and that never changes), or to an xip member
-- below H, which is a non-appender and writes no events. Any transaction that
-- may still commit events is at or above H: xip members that may append,
-- and every transaction that draws its id after S (ids >= xmax(S)).
--
-- Every writer of es_events must mark: the events of an unmarked one (a
-- process of a version before the mark, a hand-written INSERT) can be
-- skipped.
--
-- Conservative cases, counted as appenders: an x whose id lock is not in
-- the copy (between drawing its id and locking it, or ending: a rule that
-- looked up the marked ids instead, and took a missing one for a
-- non-appender, would miss an appender in that window); a prepared
-- transaction (no pid); and every x while a prepared transaction holds the
-- mark (PREPARE moves a transaction's locks one at a time). On a standby
-- the primary's locks are invisible and snapshots list no xip: H is xmin(S),
-- the oldest transaction still running.
--
-- Cost: pg_locks is read only when xip(S) is not empty (the InitPlan runs on
-- first use), once, and only the mark's rows and the id locks are kept.
-- Ids: xip holds xid8, pg_locks 32-bit xids, compared modulo 2^32.
