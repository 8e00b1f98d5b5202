SELECT key, value FROM es_kv WHERE namespace = ?1 ORDER BY key
