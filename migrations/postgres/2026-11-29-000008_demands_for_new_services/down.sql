ALTER TABLE items DROP CONSTRAINT items_incident_has_service;
ALTER TABLE items ADD CONSTRAINT items_check CHECK (item_type = 'task' OR service_id IS NOT NULL);
