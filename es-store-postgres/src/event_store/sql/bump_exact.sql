bump AS (
    UPDATE es_streams SET version = version + $2, last_xid = (SELECT xid FROM xact)
    WHERE stream_id = $1 AND version = $3 AND last_xid < (SELECT xid FROM xact)
      AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING version - $2 AS base, $3::bigint AS expected
),
