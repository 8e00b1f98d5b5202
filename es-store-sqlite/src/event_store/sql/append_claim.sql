INSERT INTO es_idempotency (
    stream_id, idempotency_key, fingerprint, last_version, positions, commit_seq, created_at
)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
