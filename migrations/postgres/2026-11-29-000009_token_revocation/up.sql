-- Token revocation: every access token carries the user's auth_epoch from the moment it was
-- issued, and the caller extractor refuses a token whose epoch is no longer the user's. A
-- password change or reset, a role change and a deactivation add one, so every token issued
-- before stops working at once. A counter, not a timestamp: `iat` has one-second resolution,
-- so a token issued in the same second as the change could not be told apart.
ALTER TABLE users ADD COLUMN auth_epoch BIGINT NOT NULL DEFAULT 0 CHECK (auth_epoch >= 0);
