-- What follows the prefix ?1 (`namespace/g`) in the namespaces that hold a
-- checkpoint: the generations, parsed by the caller. Not LIKE: the read
-- model's namespace may hold `%` or `_` (and LIKE ignores ASCII case).
SELECT DISTINCT substr(namespace, length(?1) + 1) AS generation
FROM es_kv_checkpoints
WHERE substr(namespace, 1, length(?1)) = ?1
