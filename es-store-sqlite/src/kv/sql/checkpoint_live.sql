-- The live generation of read model ?1 and projection ?2's checkpoint in it,
-- in one statement.
SELECT g.live,
       (SELECT c.checkpoint FROM es_kv_checkpoints AS c
        WHERE c.namespace = ?1 || '/g' || g.live AND c.projection = ?2) AS checkpoint
FROM (SELECT COALESCE((SELECT live FROM es_kv_generations WHERE namespace = ?1), 1) AS live) AS g
