-- +goose Up
-- Unanswered-customer notifications (issue 7). Each column holds the
-- waiting_since of the waiting period it was done for, not a time of its
-- own: "done for this period" is then "equals the dialog's waiting_since",
-- and nothing has to reset it when the dialog stops waiting (an answer,
-- "no reply needed", or any path added later).
--
-- notified_since: the first unanswered message of this period armed the
-- notices (the "new message" notification and the escalation timer), so
-- the period's later messages arm nothing. The notice jobs of a channel's
-- binding each carry every armed period not yet told (as mirror jobs carry
-- every unmirrored message), so a burst of new customers costs the CRM a
-- call or two, not one per customer.
ALTER TABLE dialogs ADD COLUMN notified_since datetime;
-- announced_since: the owner (or group) was told of this period.
ALTER TABLE dialogs ADD COLUMN announced_since datetime;
-- escalated_since: everyone with access was told about this period, so a
-- retried or duplicated timer tells nobody again.
ALTER TABLE dialogs ADD COLUMN escalated_since datetime;
-- escalated_at: when that was, for operators and the API.
ALTER TABLE dialogs ADD COLUMN escalated_at datetime;

-- +goose Down
ALTER TABLE dialogs DROP COLUMN escalated_at;
ALTER TABLE dialogs DROP COLUMN escalated_since;
ALTER TABLE dialogs DROP COLUMN announced_since;
ALTER TABLE dialogs DROP COLUMN notified_since;
