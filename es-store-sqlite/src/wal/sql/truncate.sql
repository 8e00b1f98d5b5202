-- Copies every WAL frame into the database file and truncates the WAL to zero
-- bytes. Returns (busy, log frames, checkpointed frames); busy = 1 when a reader
-- or writer kept it from completing.
PRAGMA wal_checkpoint(TRUNCATE)
