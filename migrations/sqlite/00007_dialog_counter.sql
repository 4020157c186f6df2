-- +goose Up
-- The dialog counter (issue 7): a workspace may cap the dialogs each of its
-- channels opens per hour of the workspace's clock; 0 means no cap.
ALTER TABLE workspaces ADD COLUMN dialogs_per_hour_limit integer NOT NULL DEFAULT 0;

-- One row per channel and hour: the dialogs counted in it. Workers raise
-- it with a conditional UPDATE, whose row lock lets exactly one of them take
-- the hour's last slot.
CREATE TABLE channel_dialog_hours (
    channel_id text     NOT NULL REFERENCES channels (id),
    hour_start datetime NOT NULL,
    dialogs    integer  NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, hour_start)
);

-- The customers counted in a channel's hour: a second message to one of
-- them in the same hour is not a new dialog.
CREATE TABLE channel_dialogs (
    channel_id text     NOT NULL REFERENCES channels (id),
    hour_start datetime NOT NULL,
    contact_id text     NOT NULL REFERENCES contacts (id),
    created_at datetime NOT NULL,
    PRIMARY KEY (channel_id, hour_start, contact_id)
);

-- A queued message the counter holds back, and until when; the channel's
-- page counts the messages waiting behind such holds.
ALTER TABLE messages ADD COLUMN held_until datetime;
CREATE INDEX messages_held ON messages (channel_id) WHERE held_until IS NOT NULL;

-- +goose Down
DROP INDEX messages_held;
ALTER TABLE messages DROP COLUMN held_until;
DROP TABLE channel_dialogs;
DROP TABLE channel_dialog_hours;
ALTER TABLE workspaces DROP COLUMN dialogs_per_hour_limit;
