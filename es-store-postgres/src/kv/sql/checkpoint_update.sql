UPDATE es_kv_checkpoints SET checkpoint = $4, updated_at = now()
WHERE namespace = $1 AND projection = $2 AND checkpoint = $3
