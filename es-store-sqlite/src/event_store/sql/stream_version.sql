SELECT version FROM es_streams WHERE stream_id = ?1
