-- +goose Up
-- The routing core's settings (issue 7), CRM-neutral.
--
-- A CRM's users as last read from it. A user the CRM no longer lists is
-- kept with active = false, never deleted, so the access rows and owner
-- groups that name them keep their meaning and the user is simply never
-- assigned.
CREATE TABLE crm_users (
    integration_id text    NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    user_id        text    NOT NULL,
    name           text    NOT NULL DEFAULT '',
    email          text    NOT NULL DEFAULT '',
    active         boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (integration_id, user_id)
);

-- Item 4: what a CRM user may do with a channel inside one integration.
-- No row is "none". is_default marks the user's one default outbound
-- channel (at most one per user; the store enforces it).
CREATE TABLE channel_access (
    integration_id text    NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    user_id        text    NOT NULL,
    channel_id     text    NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    level          text    NOT NULL,
    is_default     boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (integration_id, user_id, channel_id)
);
CREATE INDEX channel_access_channel ON channel_access (integration_id, channel_id, user_id);

-- Items 1, 3, 3.1 and 6 per binding: its name inside the integration, who
-- owns new customers (JSON of routing.OwnerPolicy, '' = the installing
-- user), what a repeat customer whose record is closed gets, and how
-- customer messages are mirrored.
ALTER TABLE channel_bindings ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE channel_bindings ADD COLUMN owner_policy text NOT NULL DEFAULT '';
ALTER TABLE channel_bindings ADD COLUMN on_repeat text NOT NULL DEFAULT 'last_closed';
ALTER TABLE channel_bindings ADD COLUMN mirror text NOT NULL DEFAULT 'each';

-- +goose Down
ALTER TABLE channel_bindings DROP COLUMN mirror;
ALTER TABLE channel_bindings DROP COLUMN on_repeat;
ALTER TABLE channel_bindings DROP COLUMN owner_policy;
ALTER TABLE channel_bindings DROP COLUMN name;
DROP TABLE channel_access;
DROP TABLE crm_users;
