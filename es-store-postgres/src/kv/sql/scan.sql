-- A page of generation $1's values whose keys start with $2, after $3 (NULL:
-- from the first), at most $4, in the bytes' order of the keys (COLLATE "C",
-- whatever the database's collation).
SELECT key, value FROM es_kv
WHERE namespace = $1 AND starts_with(key, $2)
  AND ($3::text IS NULL OR key COLLATE "C" > $3::text COLLATE "C")
ORDER BY key COLLATE "C"
LIMIT $4
