-- Appends no longer NOTIFY inside their transactions: a NOTIFY takes
-- PostgreSQL's one notification-queue lock at commit, which serialised every
-- append's commit. The store wakes subscribers after the commit instead, in
-- memory for its own process and with one coalesced NOTIFY on 'es_events' for
-- the others (src/notifier.rs); subscribers poll as a fallback.
DROP TRIGGER es_events_notify ON es_events;
DROP FUNCTION es_notify_append();
