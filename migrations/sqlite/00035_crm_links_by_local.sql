-- +goose Up
-- A message's or contact's CRM links across every integration (issue 10):
-- a status webhook, an echo and a deletion look up the links of a local
-- object by kind and id alone, and crm_links_local leads with the
-- integration, so each lookup read every link of that kind (every
-- mirrored message) — a cost that grew with the CRM's history.
CREATE INDEX crm_links_by_local ON crm_links (kind, local_id);

-- +goose Down
DROP INDEX crm_links_by_local;
