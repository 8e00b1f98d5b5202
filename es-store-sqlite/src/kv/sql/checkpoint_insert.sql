INSERT INTO es_kv_checkpoints (namespace, projection, checkpoint, updated_at)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (namespace, projection) DO NOTHING
