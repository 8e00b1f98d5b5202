INSERT INTO es_snapshots (stream_id, version, schema_version, payload, taken_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (stream_id) DO UPDATE
SET version = excluded.version,
    schema_version = excluded.schema_version,
    payload = excluded.payload,
    taken_at = excluded.taken_at
WHERE excluded.version > es_snapshots.version
   OR excluded.schema_version <> es_snapshots.schema_version
