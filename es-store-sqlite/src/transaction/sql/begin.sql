-- Takes the database's write lock now, not at the first write: a deferred
-- transaction that read first could not upgrade its read snapshot after another
-- writer committed (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not wait
-- out), and what the transaction checks must still hold when it writes.
BEGIN IMMEDIATE
