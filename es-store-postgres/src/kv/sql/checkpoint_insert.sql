INSERT INTO es_kv_checkpoints (namespace, projection, checkpoint) VALUES ($1, $2, $3)
ON CONFLICT (namespace, projection) DO NOTHING
