DELETE FROM es_idempotency WHERE created_at < now() - make_interval(secs => $1)
