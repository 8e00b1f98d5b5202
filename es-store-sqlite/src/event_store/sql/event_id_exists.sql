SELECT EXISTS (SELECT 1 FROM es_events WHERE event_id = ?1)
