-- The stream's current version and the append's commit id: the position the
-- first event will get (AUTOINCREMENT picks one above both the largest position
-- ever drawn and the largest present). Read under the write lock, so no other
-- append can move either before this one commits.
SELECT
    (SELECT version FROM es_streams WHERE stream_id = ?1) AS version,
    max(
        coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'es_events'), 0),
        coalesce((SELECT max(position) FROM es_events), 0)
    ) + 1 AS next_commit
