DELETE FROM es_kv_checkpoints WHERE namespace = $1
