-- +goose Up
-- A WhatsApp channel's message templates as its WABA last listed them
-- (issue 9): replaced as a whole on every refresh, so a template deleted at
-- Meta disappears. components is Meta's JSON as is.
CREATE TABLE channel_templates (
    channel_id text        NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    language   text        NOT NULL,
    category   text        NOT NULL DEFAULT '',
    status     text        NOT NULL DEFAULT '',
    components text        NOT NULL DEFAULT '[]',
    synced_at  timestamptz NOT NULL,
    PRIMARY KEY (channel_id, name, language)
);

-- +goose Down
DROP TABLE channel_templates;
