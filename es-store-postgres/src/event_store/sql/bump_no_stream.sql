bump AS (
    INSERT INTO es_streams (stream_id, version)
    SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT (stream_id) DO NOTHING
    RETURNING 0::bigint AS base, $3::bigint AS expected
),
