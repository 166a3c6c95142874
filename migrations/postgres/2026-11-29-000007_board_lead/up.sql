-- The board lead is accountable for items that get no accountable person otherwise (Jira's
-- project lead), such as a demand for a service that does not exist yet.
ALTER TABLE boards ADD COLUMN lead_id BIGINT REFERENCES users (id);
