-- +goose Up
-- The shared chat's read marks (issue 9): when a cabinet user last looked
-- at a dialog, so each of them sees their own unread count. A dialog or a
-- user that goes takes its marks along.
CREATE TABLE chat_reads (
    user_id   text        NOT NULL REFERENCES cabinet_users (id) ON DELETE CASCADE,
    dialog_id text        NOT NULL REFERENCES dialogs (id) ON DELETE CASCADE,
    read_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, dialog_id)
);
-- The chat's live updates read what changed since a moment: one query per
-- interval per gateway instance, kept cheap by this index.
CREATE INDEX messages_updated ON messages (updated_at);

-- +goose Down
DROP INDEX messages_updated;
DROP TABLE chat_reads;
