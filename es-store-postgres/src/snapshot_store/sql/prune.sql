-- Snapshots of the streams starting with $1 that are not of schema version $2
-- (NULL: all of them).
DELETE FROM es_snapshots
WHERE starts_with(stream_id, $1) AND ($2::integer IS NULL OR schema_version <> $2)
