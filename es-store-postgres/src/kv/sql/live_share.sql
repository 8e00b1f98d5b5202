-- A commit's read of the live generation: a switch (`FOR UPDATE`) waits for the
-- commit, and a commit that comes after the switch's lock reads the new value.
SELECT live FROM es_kv_generations WHERE namespace = $1 FOR SHARE
