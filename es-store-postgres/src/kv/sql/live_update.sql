-- A switch's or a drop's read of the live generation, locked until it ends.
SELECT live FROM es_kv_generations WHERE namespace = $1 FOR UPDATE
