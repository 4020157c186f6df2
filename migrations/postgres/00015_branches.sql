-- +goose Up
-- Branch routing (issue 7): one channel bound to several integrations (a
-- network of branches, each with its own CRM) sends each customer to
-- exactly one of them.
--
-- The channel's routing: mode 'all' (every binding gets every customer,
-- as before) or 'branch'; config is the JSON of routing.BranchConfig
-- (branches with their keywords and numbers, the menu's intro, the
-- default branch). No row is mode 'all'.
CREATE TABLE channel_routing (
    channel_id text        PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    mode       text        NOT NULL,
    config     text        NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL
);

-- The branch each customer of a branch-mode channel belongs to. since is
-- the earliest message time the branch takes: when a customer first gets
-- a branch, their whole history on the channel (so the messages held
-- while they chose go with them); after a move, the moment of the move
-- (the old branch keeps what it had). source says which rule chose
-- (number, keyword, menu, default, moved, outbound); staying is this row.
CREATE TABLE customer_branches (
    channel_id     text        NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    contact_id     text        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    integration_id text        NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    source         text        NOT NULL,
    since          timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (channel_id, contact_id)
);
CREATE INDEX customer_branches_integration ON customer_branches (integration_id, channel_id);

-- Customers asked to choose a branch and not yet assigned: how many menus
-- they were sent (the menu is re-sent on an invalid reply, a few times).
CREATE TABLE branch_prompts (
    channel_id text        NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    contact_id text        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    menus_sent integer     NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (channel_id, contact_id)
);

-- +goose Down
DROP TABLE branch_prompts;
DROP TABLE customer_branches;
DROP TABLE channel_routing;
