INSERT INTO es_kv_generations (namespace, live) VALUES (?1, ?2)
ON CONFLICT (namespace) DO UPDATE SET live = excluded.live
