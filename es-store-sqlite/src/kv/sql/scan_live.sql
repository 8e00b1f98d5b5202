-- scan.sql in the live generation of read model ?1, in one statement.
SELECT key, value FROM es_kv
WHERE namespace = ?1 || '/g' || COALESCE((SELECT live FROM es_kv_generations WHERE namespace = ?1), 1)
  AND key >= ?2 AND substr(key, 1, length(?2)) = ?2
  AND (?3 IS NULL OR key > ?3)
ORDER BY key
LIMIT ?4
