bump AS (
    UPDATE es_streams SET version = version + $2
    WHERE stream_id = $1 AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING version - $2 AS base, $3::bigint AS expected
),
