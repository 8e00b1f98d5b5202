DELETE FROM es_kv_tags WHERE namespace = $1
