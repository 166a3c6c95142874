ALTER TABLE boards DROP COLUMN lead_id;
