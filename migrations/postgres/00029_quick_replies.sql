-- +goose Up
-- Quick replies (issue 9): a workspace's canned answers for the shared
-- chat, each a short title, a text and optionally one file kept in the
-- media store under file_key (empty: no file).
CREATE TABLE quick_replies (
    id           text        PRIMARY KEY,
    workspace_id text        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    title        text        NOT NULL,
    text         text        NOT NULL,
    file_key     text        NOT NULL DEFAULT '',
    filename     text        NOT NULL DEFAULT '',
    mime_type    text        NOT NULL DEFAULT '',
    file_size    bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX quick_replies_workspace ON quick_replies (workspace_id, title);
-- When a webhook for the channel last arrived (messages or statuses), for
-- the channels page; written at most once a minute per channel per
-- gateway instance, not once per delivery.
ALTER TABLE channels ADD COLUMN last_webhook_at timestamptz;

-- +goose Down
ALTER TABLE channels DROP COLUMN last_webhook_at;
DROP TABLE quick_replies;
