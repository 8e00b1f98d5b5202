-- Makes sure read model $1 has a live-generation row to lock.
INSERT INTO es_kv_generations (namespace, live) VALUES ($1, 1)
ON CONFLICT (namespace) DO NOTHING
