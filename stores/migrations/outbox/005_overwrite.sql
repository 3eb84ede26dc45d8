-- `verify --repair` sends a key's newest completed message through the pipeline again, to overwrite a
-- target row that differs at the same version, which the version guard would otherwise keep. The flag
-- lets that message's writes replace an equal version (never a newer one).
ALTER TABLE outbox_messages ADD COLUMN overwrite boolean NOT NULL DEFAULT false;
