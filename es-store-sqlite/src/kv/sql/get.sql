SELECT value FROM es_kv WHERE namespace = ?1 AND key = ?2
