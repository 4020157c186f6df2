-- +goose Up
-- A CRM account connected to a workspace: a Bitrix24 portal (external_id =
-- member_id) or, later, an amoCRM account. Tokens are sealed (secret.Box).
CREATE TABLE integrations (
    id                text PRIMARY KEY,
    workspace_id      text NOT NULL REFERENCES workspaces (id),
    type              text NOT NULL,
    state             text NOT NULL,
    state_reason      text NOT NULL DEFAULT '',
    external_id       text NOT NULL,
    domain            text NOT NULL DEFAULT '',
    client_endpoint   text NOT NULL DEFAULT '',
    server_endpoint   text NOT NULL DEFAULT '',
    scope             text NOT NULL DEFAULT '',
    application_token text NOT NULL DEFAULT '',
    access_token      text NOT NULL DEFAULT '',
    refresh_token     text NOT NULL DEFAULT '',
    token_expires_at  datetime,
    token_version     integer NOT NULL DEFAULT 0,
    installed_by      text NOT NULL DEFAULT '',
    language          text NOT NULL DEFAULT '',
    settings          text,
    created_at        datetime NOT NULL,
    updated_at        datetime NOT NULL
);
CREATE UNIQUE INDEX integrations_external ON integrations (type, external_id);
CREATE INDEX integrations_workspace ON integrations (workspace_id);

-- Which channel goes where in a CRM: an Open Line, or straight into CRM.
CREATE TABLE channel_bindings (
    id             text PRIMARY KEY,
    workspace_id   text NOT NULL REFERENCES workspaces (id),
    integration_id text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    channel_id     text NOT NULL REFERENCES channels (id),
    mode           text NOT NULL,
    line_id        text NOT NULL DEFAULT '',
    entity         text NOT NULL DEFAULT '',
    category_id    text NOT NULL DEFAULT '',
    stage_id       text NOT NULL DEFAULT '',
    settings       text,
    created_at     datetime NOT NULL,
    updated_at     datetime NOT NULL
);
CREATE UNIQUE INDEX channel_bindings_pair ON channel_bindings (integration_id, channel_id);
CREATE INDEX channel_bindings_channel ON channel_bindings (channel_id);

-- Events a CRM posted to us, kept before we answer (Bitrix24 never resends).
CREATE TABLE crm_events (
    id             text PRIMARY KEY,
    integration_id text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind           text NOT NULL,
    dedup_key      text NOT NULL,
    payload        text NOT NULL,
    created_at     datetime NOT NULL
);
CREATE UNIQUE INDEX crm_events_dedup ON crm_events (integration_id, dedup_key);

-- Our objects as the CRM knows them: a message ↔ an IM message, a contact
-- ↔ an Open Lines chat or a CRM contact, and so on.
CREATE TABLE crm_links (
    id             integer PRIMARY KEY AUTOINCREMENT,
    integration_id text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind           text NOT NULL,
    local_id       text NOT NULL,
    remote_id      text NOT NULL,
    extra          text,
    created_at     datetime NOT NULL
);
CREATE UNIQUE INDEX crm_links_local ON crm_links (integration_id, kind, local_id);
CREATE INDEX crm_links_remote ON crm_links (integration_id, kind, remote_id);

-- OAuth state values: single use, short-lived.
CREATE TABLE oauth_states (
    state        text PRIMARY KEY,
    workspace_id text NOT NULL,
    provider     text NOT NULL,
    domain       text NOT NULL DEFAULT '',
    expires_at   datetime NOT NULL,
    created_at   datetime NOT NULL
);

-- +goose Down
DROP TABLE oauth_states;
DROP TABLE crm_links;
DROP TABLE crm_events;
DROP TABLE channel_bindings;
DROP TABLE integrations;
