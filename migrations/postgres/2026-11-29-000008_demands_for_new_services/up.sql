-- A demand may ask for a service that does not exist yet (demand_details.proposed_service);
-- incidents still always concern a service.
ALTER TABLE items DROP CONSTRAINT items_check;
ALTER TABLE items ADD CONSTRAINT items_incident_has_service
    CHECK (item_type <> 'incident' OR service_id IS NOT NULL);
