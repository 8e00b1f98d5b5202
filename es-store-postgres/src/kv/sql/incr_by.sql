-- A stored value that is not an integer, or an overflow, fails the statement
-- and with it the whole batch.
INSERT INTO es_kv AS kv (namespace, key, value) VALUES ($1, $2, $3::bigint::text)
ON CONFLICT (namespace, key) DO UPDATE SET value = (kv.value::bigint + $3::bigint)::text
