INSERT INTO es_kv (namespace, key, value) VALUES (?1, ?2, ?3)
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value
