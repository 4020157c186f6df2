-- +goose Up
-- Channels of one workspace take turns (issue 10): a job's lane is the
-- channel it serves ('' when it serves none), and within a workspace the
-- claim ranks a job by its turn in its lane. The walk now reads each lane
-- of a workspace in id order, so the index it walks gains the lane between
-- the workspace and the id; it replaces jobs_walk, whose every use it
-- serves as well (the workspaces with pending jobs are still its prefix).
ALTER TABLE jobs ADD COLUMN lane text NOT NULL DEFAULT '';
DROP INDEX jobs_walk;
CREATE INDEX jobs_walk_lane ON jobs (state, workspace_id, lane, id) WHERE wait_until IS NULL;

-- +goose Down
DROP INDEX jobs_walk_lane;
CREATE INDEX jobs_walk ON jobs (state, workspace_id, id) WHERE wait_until IS NULL;
ALTER TABLE jobs DROP COLUMN lane;
