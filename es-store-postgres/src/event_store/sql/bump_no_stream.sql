bump AS (
    -- last_xid is given, not left to its pg_current_xact_id() default: the
    -- default would draw the id before the mark.
    INSERT INTO es_streams (stream_id, version, last_xid)
    SELECT $1, $2, xact.xid FROM xact WHERE NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT (stream_id) DO NOTHING
    RETURNING 0::bigint AS base, $3::bigint AS expected
),
