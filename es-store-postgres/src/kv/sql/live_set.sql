UPDATE es_kv_generations SET live = $2 WHERE namespace = $1
