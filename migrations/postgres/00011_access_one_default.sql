-- +goose Up
-- A CRM user has at most one default outbound channel per integration
-- (item 4). The settings API keeps it so; the index makes it a fact of
-- the table, whoever writes.
CREATE UNIQUE INDEX channel_access_one_default ON channel_access (integration_id, user_id) WHERE is_default;

-- +goose Down
DROP INDEX channel_access_one_default;
