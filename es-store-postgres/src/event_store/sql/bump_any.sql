bump AS (
    INSERT INTO es_streams AS s (stream_id, version)
    SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT (stream_id) DO UPDATE
    SET version = s.version + $2, last_xid = pg_current_xact_id()
    WHERE s.last_xid < pg_current_xact_id()
    RETURNING s.version - $2 AS base, $3::bigint AS expected
),
