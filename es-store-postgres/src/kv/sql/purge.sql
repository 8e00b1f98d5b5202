WITH tagged AS (
    DELETE FROM es_kv_tags WHERE namespace = $1 AND subject = $2 RETURNING key
)
DELETE FROM es_kv WHERE namespace = $1 AND key IN (SELECT key FROM tagged)
