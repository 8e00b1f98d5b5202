-- A value in the live generation of read model ?1: resolved in the same
-- statement, so a read sees one generation whatever a switch does.
SELECT value FROM es_kv
WHERE namespace = ?1 || '/g' || COALESCE((SELECT live FROM es_kv_generations WHERE namespace = ?1), 1)
  AND key = ?2
