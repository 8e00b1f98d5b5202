INSERT INTO es_snapshots AS s (stream_id, version, schema_version, payload, taken_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version,
    schema_version = EXCLUDED.schema_version,
    payload = EXCLUDED.payload,
    taken_at = EXCLUDED.taken_at
WHERE EXCLUDED.version > s.version OR EXCLUDED.schema_version <> s.schema_version
