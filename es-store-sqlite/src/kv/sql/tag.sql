INSERT INTO es_kv_tags (namespace, subject, key) VALUES (?1, ?2, ?3)
ON CONFLICT DO NOTHING
