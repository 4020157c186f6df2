-- +goose Up
-- The planner's counts of distinct job keys, workspaces and lanes, fixed
-- rather than sampled (issue 10). Every probe of a claim reads one key's,
-- workspace's or lane's first pending jobs through an index made for it
-- (jobs_key, jobs_walk_lane); whether the planner uses that index, or
-- reads the primary key in order and filters, depends on how many jobs it
-- expects the value to have. An ANALYZE in a burst's first seconds
-- samples a table of one CRM binding's mirror jobs and a few others,
-- counts 2 keys (or the one workspace that was busy), and the planner
-- then takes every key for half the table and reads each key's first job
-- through the primary key, past every job of the others: a soak's claims
-- took 15-30 s, leases ran out, and the VACUUM that would have analysed
-- again waited behind them. One value in 20 jobs is a count under which
-- any key, workspace or lane looks small enough to be read through its
-- index, which is right for every probe whatever its real size
-- (BenchmarkClaim's fewkeys).
ALTER TABLE jobs ALTER COLUMN queue_key SET (n_distinct = -0.05);
ALTER TABLE jobs ALTER COLUMN workspace_id SET (n_distinct = -0.05);
ALTER TABLE jobs ALTER COLUMN lane SET (n_distinct = -0.05);

-- +goose Down
ALTER TABLE jobs ALTER COLUMN queue_key RESET (n_distinct);
ALTER TABLE jobs ALTER COLUMN workspace_id RESET (n_distinct);
ALTER TABLE jobs ALTER COLUMN lane RESET (n_distinct);
