DELETE FROM es_idempotency WHERE created_at < ?1
