-- A page of generation ?1's values whose keys start with ?2, after ?3 (NULL:
-- from the first), at most ?4, in key order (BINARY: the bytes' order).
SELECT key, value FROM es_kv
WHERE namespace = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2
  AND (?3 IS NULL OR key > ?3)
ORDER BY key
LIMIT ?4
