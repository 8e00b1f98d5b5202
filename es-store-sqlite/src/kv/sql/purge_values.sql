-- Before `purge_tags.sql`, in the same transaction.
DELETE FROM es_kv
WHERE namespace = ?1
  AND key IN (SELECT key FROM es_kv_tags WHERE namespace = ?1 AND subject = ?2)
