-- +goose Up
-- A customer's picture where the messenger gives one (Instagram profiles);
-- CRMs show it beside the customer's name.
ALTER TABLE contacts ADD COLUMN avatar_url text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE contacts DROP COLUMN avatar_url;
