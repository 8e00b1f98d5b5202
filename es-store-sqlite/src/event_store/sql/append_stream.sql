-- Moves the stream from the version read under the write lock (?3, 0 for a new
-- stream) to its new version (?2). Touches no row when the stream is not at ?3.
INSERT INTO es_streams (stream_id, version) VALUES (?1, ?2)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version
WHERE es_streams.version = ?3
