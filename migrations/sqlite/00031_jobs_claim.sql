-- +goose Up
-- The claim walks the workspaces that have pending jobs and, in each, the
-- pending jobs in id order until it has found the few it may run, so its
-- cost follows the batch and the number of workspaces, not the backlog
-- (issue 10). Not partial: without statistics (the gateway never analyses
-- SQLite) SQLite preferred jobs_ready's state prefix to a partial index
-- and read every pending job again; with state leading, this index
-- matches more of the claim's conditions than any other.
CREATE INDEX jobs_claim ON jobs (state, workspace_id, id);

-- +goose Down
DROP INDEX jobs_claim;
