-- Generations of the SQL key-value read models, for zero-downtime rebuilds: a
-- rebuild writes a new generation beside the live one and switches the live
-- pointer in one step. Generation `g` of read model `namespace` keeps its rows
-- in es_kv, es_kv_tags and es_kv_checkpoints under the namespace
-- `namespace || '/g' || g`. No row here: generation 1 is live.
--
-- Commits and switches are `BEGIN IMMEDIATE` transactions, one at a time: a
-- commit reads the live generation first, so one to a generation that a switch
-- superseded is refused.
CREATE TABLE es_kv_generations (
    namespace TEXT PRIMARY KEY NOT NULL,
    live INTEGER NOT NULL CHECK (live >= 1)
) STRICT;

-- The rows written before generations existed are the read models' first
-- generation (every stored namespace was a read model's own).
UPDATE es_kv SET namespace = namespace || '/g1';
UPDATE es_kv_tags SET namespace = namespace || '/g1';
UPDATE es_kv_checkpoints SET namespace = namespace || '/g1';
