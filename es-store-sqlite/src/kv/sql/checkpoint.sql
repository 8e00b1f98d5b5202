SELECT checkpoint FROM es_kv_checkpoints WHERE namespace = ?1 AND projection = ?2
