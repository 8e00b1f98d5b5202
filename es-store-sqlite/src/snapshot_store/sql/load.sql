SELECT version, payload, taken_at
FROM es_snapshots
WHERE stream_id = ?1 AND schema_version = ?2
