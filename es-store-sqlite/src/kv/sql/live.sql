-- The live generation of read model ?1 (no row: generation 1).
SELECT COALESCE((SELECT live FROM es_kv_generations WHERE namespace = ?1), 1)
