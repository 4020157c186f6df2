-- +goose Up
CREATE TABLE workspaces (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    timezone    text NOT NULL DEFAULT 'UTC',
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX workspaces_one_default ON workspaces (is_default) WHERE is_default;

CREATE TABLE api_tokens (
    id            text PRIMARY KEY,
    workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '',
    token_hash    text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);

CREATE TABLE channels (
    id            text PRIMARY KEY,
    workspace_id  text NOT NULL REFERENCES workspaces (id),
    type          text NOT NULL,
    name          text NOT NULL,
    state         text NOT NULL,
    state_reason  text NOT NULL DEFAULT '',
    account_id    text NOT NULL,
    waba_id       text NOT NULL DEFAULT '',
    display_phone text NOT NULL DEFAULT '',
    page_id       text NOT NULL DEFAULT '',
    access_token  text NOT NULL,
    send_rate     double precision NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX channels_account ON channels (type, account_id) WHERE state <> 'disabled';
CREATE INDEX channels_workspace ON channels (workspace_id);

CREATE TABLE contacts (
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL REFERENCES workspaces (id),
    channel_id      text NOT NULL REFERENCES channels (id),
    external_id     text NOT NULL,
    name            text NOT NULL DEFAULT '',
    phone           text NOT NULL DEFAULT '',
    username        text NOT NULL DEFAULT '',
    last_inbound_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX contacts_channel_external ON contacts (channel_id, external_id);

CREATE TABLE media (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    channel_id   text NOT NULL REFERENCES channels (id),
    provider_id  text NOT NULL DEFAULT '',
    source_url   text NOT NULL DEFAULT '',
    mime_type    text NOT NULL DEFAULT '',
    filename     text NOT NULL DEFAULT '',
    size         bigint NOT NULL DEFAULT 0,
    sha256       text NOT NULL DEFAULT '',
    storage_key  text NOT NULL DEFAULT '',
    state        text NOT NULL,
    error        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX media_channel ON media (channel_id);

CREATE TABLE messages (
    id                 text PRIMARY KEY,
    workspace_id       text NOT NULL REFERENCES workspaces (id),
    channel_id         text NOT NULL REFERENCES channels (id),
    contact_id         text NOT NULL REFERENCES contacts (id),
    direction          text NOT NULL,
    type               text NOT NULL,
    text               text NOT NULL DEFAULT '',
    media_id           text REFERENCES media (id),
    extra              text,
    template           text,
    external_id        text,
    quoted_message_id  text,
    quoted_external_id text NOT NULL DEFAULT '',
    human_agent        boolean NOT NULL DEFAULT false,
    status             text NOT NULL,
    error_code         integer NOT NULL DEFAULT 0,
    error_title        text NOT NULL DEFAULT '',
    error_detail       text NOT NULL DEFAULT '',
    provider_at        timestamptz,
    sent_at            timestamptz,
    delivered_at       timestamptz,
    read_at            timestamptz,
    failed_at          timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE UNIQUE INDEX messages_external ON messages (channel_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX messages_channel_page ON messages (channel_id, id);
CREATE INDEX messages_contact ON messages (contact_id, id);

-- Statuses that arrive before the send call that produced their wamid has
-- returned (Meta does not order them); applied when the wamid is stored.
CREATE TABLE orphan_statuses (
    id           bigserial PRIMARY KEY,
    channel_id   text NOT NULL REFERENCES channels (id),
    external_id  text NOT NULL,
    status       text NOT NULL,
    error_code   integer NOT NULL DEFAULT 0,
    error_title  text NOT NULL DEFAULT '',
    error_detail text NOT NULL DEFAULT '',
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE UNIQUE INDEX orphan_statuses_key ON orphan_statuses (channel_id, external_id, status);

-- Deliveries for a channel we do not (yet) know: kept so that nothing we
-- answered 200 to is lost, and can be replayed once the channel exists.
CREATE TABLE unrouted_events (
    id           bigserial PRIMARY KEY,
    channel_type text NOT NULL,
    account_id   text NOT NULL,
    payload      text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX unrouted_events_account ON unrouted_events (channel_type, account_id);

CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    workspace_id text NOT NULL DEFAULT '',
    queue_key    text NOT NULL,
    payload      text NOT NULL,
    state        text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    run_at       timestamptz NOT NULL,
    locked_by    text NOT NULL DEFAULT '',
    locked_until timestamptz,
    last_error   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_at);
CREATE INDEX jobs_key ON jobs (queue_key, state, id);

-- +goose Down
DROP TABLE jobs;
DROP TABLE unrouted_events;
DROP TABLE orphan_statuses;
DROP TABLE messages;
DROP TABLE media;
DROP TABLE contacts;
DROP TABLE channels;
DROP TABLE api_tokens;
DROP TABLE workspaces;
