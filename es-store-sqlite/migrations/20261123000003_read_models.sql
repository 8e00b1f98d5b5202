-- The SQL key-value read model: values, per-subject tags for purging, and the
-- projections' checkpoints, committed in one transaction with the writes. A
-- namespace separates read models (and, for rebuilds, their generations).
--
-- Values are deleted, not just unlinked, under `secure_delete` (see
-- `SqliteStore`); after a purge, truncating the write-ahead log removes the
-- last earlier images of their pages.
CREATE TABLE es_kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) STRICT;

CREATE TABLE es_kv_tags (
    namespace TEXT NOT NULL,
    subject TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (namespace, subject, key)
) STRICT;

-- `checkpoint` in its text form; `updated_at` INTEGER microseconds since the
-- Unix epoch, as the other tables' times.
CREATE TABLE es_kv_checkpoints (
    namespace TEXT NOT NULL,
    projection TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, projection)
) STRICT;
