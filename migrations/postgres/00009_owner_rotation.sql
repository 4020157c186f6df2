-- +goose Up
-- Owner assignment (issue 7). The caller names the rotation with a scope key
-- (a binding, or an integration and a channel) so the store stays
-- CRM-neutral.
--
-- The smooth weighted round-robin's state per scope, as JSON that only
-- routing reads. Pickers lock this row (FOR UPDATE on PostgreSQL), so
-- several gateway instances advance one rotation one pick at a time.
CREATE TABLE owner_rotations (
    scope_key  text        NOT NULL PRIMARY KEY,
    state      text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL
);

-- A customer's owner in a scope, written once: the primary key makes a
-- second assignment of the same customer impossible, whichever strategy
-- (source 'rotation' or 'claim') tries it. contact_id has no foreign key:
-- the caller decides what a contact id is in its scope.
CREATE TABLE owner_assignments (
    scope_key  text        NOT NULL,
    contact_id text        NOT NULL,
    user_id    text        NOT NULL,
    source     text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (scope_key, contact_id)
);

-- +goose Down
DROP TABLE owner_assignments;
DROP TABLE owner_rotations;
