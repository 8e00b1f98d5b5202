DELETE FROM es_kv_tags WHERE namespace = ?1 AND subject = ?2
