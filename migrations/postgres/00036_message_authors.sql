-- +goose Up
-- Who wrote an outbound message (a cabinet user, a CRM user, the API, an
-- automation), so the chat views can name the colleague who answered. A
-- table apart, not columns of messages: only outbound messages have an
-- author, and the hand-written message inserts of the inbound hot path
-- stay as they are. name is the author's name when it was sent (a
-- snapshot: a later rename or removal keeps the history readable).
CREATE TABLE message_authors (
    message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE message_authors;
