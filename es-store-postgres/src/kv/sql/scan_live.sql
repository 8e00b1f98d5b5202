-- scan.sql in the live generation of read model $1, in one statement.
SELECT key, value FROM es_kv
WHERE namespace = $1 || '/g' || COALESCE((SELECT live FROM es_kv_generations WHERE namespace = $1), 1)
  AND starts_with(key, $2)
  AND ($3::text IS NULL OR key COLLATE "C" > $3::text COLLATE "C")
ORDER BY key COLLATE "C"
LIMIT $4
