DROP TABLE sla_policies;
ALTER TABLE board_columns DROP COLUMN pauses_sla;
DROP TABLE incident_services;
DROP TABLE incident_details;
DROP TABLE demand_details;
