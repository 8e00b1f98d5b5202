-- The SQL key-value read model: values, per-subject tags for purging, and the
-- projections' checkpoints, committed in one transaction with the writes. A
-- namespace separates read models (and, for rebuilds, their generations).
CREATE TABLE es_kv (
    namespace text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE TABLE es_kv_tags (
    namespace text NOT NULL,
    subject text NOT NULL,
    key text NOT NULL,
    PRIMARY KEY (namespace, subject, key)
);

CREATE TABLE es_kv_checkpoints (
    namespace text NOT NULL,
    projection text NOT NULL,
    checkpoint text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, projection)
);
