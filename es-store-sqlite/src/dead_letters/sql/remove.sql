DELETE FROM es_dead_letters WHERE projection = ?1 AND event_id = ?2
