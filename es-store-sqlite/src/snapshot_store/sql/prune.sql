-- Snapshots of the streams starting with ?1 that are not of schema version ?2
-- (NULL: all of them). `substr` on text counts characters on both sides.
DELETE FROM es_snapshots
WHERE substr(stream_id, 1, length(?1)) = ?1 AND (?2 IS NULL OR schema_version <> ?2)
