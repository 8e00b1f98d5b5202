-- Dead letters recorded by a rebuild's runner (replaying into a new
-- generation) are told apart from the live runner's: the live generation has
-- not gone past them, so a later rebuild must not skip them as decided, and
-- they stop the rebuild's switch unless the operator accepts them. 0 or 1.
ALTER TABLE es_dead_letters ADD COLUMN replay INTEGER NOT NULL DEFAULT 0 CHECK (replay IN (0, 1));
