DELETE FROM es_kv WHERE namespace = ?1
