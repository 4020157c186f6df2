-- +goose Up
-- A blocked backlog (issue 10: keys whose head waits out a retry an hour
-- away, every later job of the key behind it) made the claim's walk read
-- jobs that cannot run. wait_until parks a pending job until the earliest
-- time it could run: its own run_at, or a run_at of an older pending job of
-- its key (it runs after that one). NULL means "may be ready": only those
-- jobs are walked (jobs_walk), and each claim first unparks the jobs whose
-- wait_until has passed (jobs_parked).
--
-- The rule that keeps this safe: a stored wait_until is never later than
-- the true earliest time, so parking can delay nothing; a value that is
-- too early (or NULL) only costs the walk a row it skips. Triggers keep it
-- so for every statement, the queue's own and any other (tests move run_at
-- by hand): a pending job that gets a later run_at parks itself and the
-- later jobs of its key; a pending job that goes (deleted, dead) or gets
-- an earlier run_at unparks the later jobs of its key. The claim
-- still checks the full readiness rule, so a job left unparked is skipped,
-- never run out of turn. "Now" in a trigger is the row's updated_at, which
-- the queue's statements set: a stale one only parks a job that is due,
-- and the next claim unparks it. Times are the driver's text, compared as
-- text like everywhere else in the queue; max() of two of them is the
-- later one, and of a NULL is NULL, hence the coalesce.
ALTER TABLE jobs ADD COLUMN wait_until datetime;

-- A pending job due later than now, or behind one that is, waits until
-- then. The newest older pending job of the key carries in its own
-- wait_until the run_at of the ones before it. An INSERT only parks when
-- it has to, so an enqueue of a job due now writes nothing more.
-- +goose StatementBegin
CREATE TRIGGER jobs_wait_insert AFTER INSERT ON jobs
WHEN NEW.state = 'pending' AND (NEW.run_at > NEW.updated_at OR (NEW.queue_key <> '' AND
    (SELECT max(p.run_at, coalesce(p.wait_until, p.run_at)) FROM jobs p
     WHERE p.queue_key = NEW.queue_key AND p.state = 'pending' AND p.id < NEW.id ORDER BY p.id DESC LIMIT 1) > NEW.updated_at))
BEGIN
    UPDATE jobs SET wait_until = max(NEW.run_at, coalesce(
        (SELECT max(p.run_at, coalesce(p.wait_until, p.run_at)) FROM jobs p
         WHERE NEW.queue_key <> '' AND p.queue_key = NEW.queue_key AND p.state = 'pending' AND p.id < NEW.id
         ORDER BY p.id DESC LIMIT 1), NEW.run_at))
    WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- A job that becomes pending or changes its run_at: its own wait first,
-- then, when it waits, the later pending jobs of its key wait with it.
-- +goose StatementBegin
CREATE TRIGGER jobs_wait_update AFTER UPDATE OF state, run_at ON jobs
WHEN NEW.state = 'pending' AND (OLD.state <> 'pending' OR NEW.run_at <> OLD.run_at)
BEGIN
    UPDATE jobs SET wait_until = (SELECT CASE WHEN w > NEW.updated_at THEN w END FROM (
        SELECT max(NEW.run_at, coalesce(
            (SELECT max(p.run_at, coalesce(p.wait_until, p.run_at)) FROM jobs p
             WHERE NEW.queue_key <> '' AND p.queue_key = NEW.queue_key AND p.state = 'pending' AND p.id < NEW.id
             ORDER BY p.id DESC LIMIT 1), NEW.run_at)) AS w))
    WHERE id = NEW.id;
    UPDATE jobs SET wait_until = (SELECT s.wait_until FROM jobs s WHERE s.id = NEW.id)
    WHERE (OLD.state <> 'pending' OR NEW.run_at > OLD.run_at)
        AND NEW.queue_key <> '' AND queue_key = NEW.queue_key AND state = 'pending' AND id > NEW.id
        AND (wait_until IS NULL OR wait_until < (SELECT s.wait_until FROM jobs s WHERE s.id = NEW.id));
END;
-- +goose StatementEnd

-- A pending job whose run_at comes earlier: the later jobs of its key wait
-- no longer than for it.
-- +goose StatementBegin
CREATE TRIGGER jobs_wait_sooner AFTER UPDATE OF state, run_at ON jobs
WHEN OLD.state = 'pending' AND NEW.state = 'pending' AND NEW.run_at < OLD.run_at AND NEW.queue_key <> ''
BEGIN
    UPDATE jobs SET wait_until = min(wait_until, max(run_at, NEW.run_at))
    WHERE queue_key = NEW.queue_key AND id > NEW.id AND wait_until IS NOT NULL AND wait_until > run_at;
END;
-- +goose StatementEnd

-- A pending job that is dead or deleted holds back nothing any more: the
-- later jobs of its key wait at most for their own run_at. The claim
-- (pending to running) and the end of a run do nothing here: a claimed job
-- was due, so whatever waited for it is due too, and a running job holds
-- back nothing by time. Both are the hot path of every job.
-- +goose StatementBegin
CREATE TRIGGER jobs_wait_left AFTER UPDATE OF state, run_at ON jobs
WHEN OLD.state = 'pending' AND NEW.state NOT IN ('pending', 'running') AND NEW.queue_key <> ''
BEGIN
    UPDATE jobs SET wait_until = run_at
    WHERE queue_key = NEW.queue_key AND id > NEW.id AND wait_until IS NOT NULL AND wait_until > run_at;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER jobs_wait_gone AFTER DELETE ON jobs
WHEN OLD.state = 'pending' AND OLD.queue_key <> ''
BEGIN
    UPDATE jobs SET wait_until = run_at
    WHERE queue_key = OLD.queue_key AND id > OLD.id AND wait_until IS NOT NULL AND wait_until > run_at;
END;
-- +goose StatementEnd

-- The jobs already queued: each waits for the latest run_at among itself
-- and the older pending jobs of its key.
UPDATE jobs SET wait_until = e.w
FROM (
    SELECT id, CASE WHEN queue_key = '' THEN run_at
        ELSE max(run_at) OVER (PARTITION BY queue_key ORDER BY id ROWS UNBOUNDED PRECEDING) END AS w
    FROM jobs WHERE state = 'pending'
) e
WHERE jobs.id = e.id AND e.w > strftime('%Y-%m-%d %H:%M:%f+00:00', 'now');

-- The walk reads the jobs that may be ready, per workspace in id order; it
-- replaces jobs_claim, which also held the parked ones.
DROP INDEX jobs_claim;
CREATE INDEX jobs_walk ON jobs (state, workspace_id, id) WHERE wait_until IS NULL;
-- The claim unparks by time, the triggers by key.
CREATE INDEX jobs_parked ON jobs (wait_until) WHERE wait_until IS NOT NULL;
CREATE INDEX jobs_parked_key ON jobs (queue_key, id) WHERE wait_until IS NOT NULL;

-- +goose Down
DROP INDEX jobs_parked_key;
DROP INDEX jobs_parked;
DROP INDEX jobs_walk;
CREATE INDEX jobs_claim ON jobs (state, workspace_id, id);
DROP TRIGGER jobs_wait_gone;
DROP TRIGGER jobs_wait_left;
DROP TRIGGER jobs_wait_sooner;
DROP TRIGGER jobs_wait_update;
DROP TRIGGER jobs_wait_insert;
ALTER TABLE jobs DROP COLUMN wait_until;
