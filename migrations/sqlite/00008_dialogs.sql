-- +goose Up
-- A dialog is one customer (contact) of a channel as one CRM integration
-- sees the conversation: who owns it there, which CRM record it is, what
-- is unread and whether the customer waits for an answer. A channel bound
-- to two CRMs has two dialogs per customer, each with its own owner.
CREATE TABLE dialogs (
    id                 text PRIMARY KEY,
    workspace_id       text NOT NULL REFERENCES workspaces (id),
    integration_id     text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    channel_id         text NOT NULL REFERENCES channels (id),
    contact_id         text NOT NULL REFERENCES contacts (id),
    -- The CRM's user id; '' is unassigned.
    owner_user_id      text NOT NULL DEFAULT '',
    crm_entity         text NOT NULL DEFAULT '',
    crm_entity_id      text NOT NULL DEFAULT '',
    unread_count       integer NOT NULL DEFAULT 0,
    last_inbound_at    datetime,
    last_outbound_at   datetime,
    -- The later of the two above: the list's order, kept as a column so
    -- an index can serve it.
    last_message_at    datetime NOT NULL,
    waiting            integer NOT NULL DEFAULT 0,
    -- Set with waiting (the first unanswered customer message), NULL
    -- otherwise: what unanswered-dialog timers count from.
    waiting_since      datetime,
    no_reply_needed_at datetime,
    created_at         datetime NOT NULL,
    updated_at         datetime NOT NULL
);
CREATE UNIQUE INDEX dialogs_key ON dialogs (integration_id, channel_id, contact_id);
-- The list, newest activity first, with or without a filter on one of
-- these (the unique index above does not lead with the workspace).
CREATE INDEX dialogs_workspace_activity ON dialogs (workspace_id, last_message_at, id);
CREATE INDEX dialogs_channel_activity ON dialogs (channel_id, last_message_at, id);
CREATE INDEX dialogs_owner_activity ON dialogs (integration_id, owner_user_id, last_message_at, id);
-- Scans for dialogs that wait longer than a limit, across workspaces
-- (query with "WHERE waiting", as written here, on both engines).
CREATE INDEX dialogs_waiting ON dialogs (waiting_since, id) WHERE waiting;

-- +goose Down
DROP TABLE dialogs;
