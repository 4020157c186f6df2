-- +goose Up
-- The account's id in its CRM's chat service (amoCRM's amojo_id): the
-- Chats API addresses an account by it, and its hooks name it.
ALTER TABLE integrations ADD COLUMN chat_account_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE integrations DROP COLUMN chat_account_id;
