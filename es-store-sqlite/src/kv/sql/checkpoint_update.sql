UPDATE es_kv_checkpoints SET checkpoint = ?4, updated_at = ?5
WHERE namespace = ?1 AND projection = ?2 AND checkpoint = ?3
