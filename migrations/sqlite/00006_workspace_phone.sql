-- +goose Up
-- How a workspace reads phone numbers people type (operators, CRM records,
-- robots): with phone_trunk8 an 11-digit number starting with 8 is the
-- Russian/Kazakh trunk prefix (+7); off, 8 starts a country code, as in
-- much of Asia. phone_region is the country assumed for national numbers.
ALTER TABLE workspaces ADD COLUMN phone_trunk8 integer NOT NULL DEFAULT 1;
ALTER TABLE workspaces ADD COLUMN phone_region text NOT NULL DEFAULT 'RU';

-- +goose Down
ALTER TABLE workspaces DROP COLUMN phone_region;
ALTER TABLE workspaces DROP COLUMN phone_trunk8;
