-- Every value in the live generation of read model ?1, in one statement.
SELECT key, value FROM es_kv
WHERE namespace = ?1 || '/g' || COALESCE((SELECT live FROM es_kv_generations WHERE namespace = ?1), 1)
ORDER BY key
