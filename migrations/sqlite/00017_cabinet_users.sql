-- +goose Up
-- The web cabinet's people (issue 9): who signs in to a workspace, their
-- sessions, and the failed sign-ins that slow a password guesser down.
--
-- email is kept lower-cased and is unique inside a workspace; the same
-- person may belong to several workspaces. password_hash is an argon2id
-- PHC string. language is the cabinet's language the person chose ('' =
-- from the browser).
CREATE TABLE cabinet_users (
    id            text        PRIMARY KEY,
    workspace_id  text        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email         text        NOT NULL,
    name          text        NOT NULL DEFAULT '',
    role          text        NOT NULL,
    password_hash text        NOT NULL,
    language      text        NOT NULL DEFAULT '',
    created_at    datetime    NOT NULL,
    updated_at    datetime    NOT NULL
);
CREATE UNIQUE INDEX cabinet_users_email ON cabinet_users (workspace_id, email);
CREATE INDEX cabinet_users_login ON cabinet_users (email);

-- The CRM user a cabinet user is in each integration, so the access
-- matrix and ownership (keyed by the CRM's user id) apply to them. A CRM
-- user is at most one cabinet user.
CREATE TABLE cabinet_user_crm_links (
    user_id        text        NOT NULL REFERENCES cabinet_users (id) ON DELETE CASCADE,
    integration_id text        NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    crm_user_id    text        NOT NULL,
    created_at     datetime    NOT NULL,
    PRIMARY KEY (user_id, integration_id)
);
CREATE UNIQUE INDEX cabinet_user_crm_links_crm ON cabinet_user_crm_links (integration_id, crm_user_id);

-- Server-side sessions. id_hash is the SHA-256 of the cookie's random id
-- (a database leak gives no usable cookie). A session ends at expires_at
-- (absolute) or when last_seen_at is older than the idle limit.
CREATE TABLE cabinet_sessions (
    id_hash      text        PRIMARY KEY,
    user_id      text        NOT NULL REFERENCES cabinet_users (id) ON DELETE CASCADE,
    created_at   datetime    NOT NULL,
    last_seen_at datetime    NOT NULL,
    expires_at   datetime    NOT NULL
);
CREATE INDEX cabinet_sessions_user ON cabinet_sessions (user_id);

-- Failed sign-ins, per account (the e-mail typed, known or not) and per
-- client address, counted over a window; in the database so that every
-- instance counts the same attempts.
CREATE TABLE login_failures (
    id         text        PRIMARY KEY,
    kind       text        NOT NULL,
    key        text        NOT NULL,
    created_at datetime    NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (kind, key, created_at);

-- +goose Down
DROP TABLE login_failures;
DROP TABLE cabinet_sessions;
DROP TABLE cabinet_user_crm_links;
DROP TABLE cabinet_users;
