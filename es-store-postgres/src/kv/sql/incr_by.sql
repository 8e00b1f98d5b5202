-- A stored value that is not an integer, or an overflow, fails the statement
-- and with it the whole batch. "An integer" is what Rust's i64 parses (an
-- optional sign, ASCII digits, nothing around them): PostgreSQL's own cast
-- would also take surrounding spaces, so anything else is replaced by a text
-- that fails the cast the same way (and keeps the stored value out of the
-- error message).
INSERT INTO es_kv AS kv (namespace, key, value) VALUES ($1, $2, $3::bigint::text)
ON CONFLICT (namespace, key) DO UPDATE SET value = ((
    CASE WHEN kv.value ~ '^[+-]?[0-9]+$' THEN kv.value ELSE 'not an integer' END
)::bigint + $3::bigint)::text
