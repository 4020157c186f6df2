-- +goose Up
-- Hourly and daily mirroring (issue 7, item 6). A batch is one window of
-- one binding on the workspace's clock: it is opened (state 'open') by the
-- first customer message of the window, closed at the window's end (or by
-- a flush) by assigning it every customer message of the binding not yet
-- in a batch, then written to the CRM ('sending' while a write may have
-- reached the CRM without us knowing, 'sent' after).
CREATE TABLE mirror_batches (
    id             text PRIMARY KEY,
    workspace_id   text NOT NULL REFERENCES workspaces (id),
    integration_id text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    -- No foreign key: a batch closed before an unbind is still written.
    binding_id     text NOT NULL,
    channel_id     text NOT NULL REFERENCES channels (id),
    mode           text NOT NULL,
    opens_at       timestamptz NOT NULL,
    closes_at      timestamptz NOT NULL,
    state          text NOT NULL,
    closed_at      timestamptz,
    messages       integer NOT NULL DEFAULT 0,
    attempts       integer NOT NULL DEFAULT 0,
    sent_at        timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
-- One open batch per binding and window: the ingest's insert of the
-- window's batch is idempotent, and a flushed window can open again.
CREATE UNIQUE INDEX mirror_batches_open ON mirror_batches (binding_id, closes_at) WHERE state = 'open';
CREATE INDEX mirror_batches_integration ON mirror_batches (integration_id, state, closes_at);

-- Which batch a customer message went out in. The key makes a message land
-- in exactly one batch per binding, whoever closes what and however often.
CREATE TABLE mirror_batch_items (
    binding_id text NOT NULL,
    message_id text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    batch_id   text NOT NULL REFERENCES mirror_batches (id) ON DELETE CASCADE,
    contact_id text NOT NULL,
    PRIMARY KEY (binding_id, message_id)
);
CREATE INDEX mirror_batch_items_batch ON mirror_batch_items (batch_id, contact_id, message_id);

-- +goose Down
DROP TABLE mirror_batch_items;
DROP TABLE mirror_batches;
