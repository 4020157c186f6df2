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
-- and the next claim unparks it.
ALTER TABLE jobs ADD COLUMN wait_until timestamptz;

-- A pending job due later than now, or behind one that is, waits until then.
-- +goose StatementBegin
CREATE FUNCTION jobs_wait_self() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    w timestamptz := NEW.run_at;
    prev timestamptz;
BEGIN
    IF NEW.state <> 'pending' OR (TG_OP = 'UPDATE' AND OLD.state = 'pending' AND NEW.run_at = OLD.run_at) THEN
        RETURN NEW;
    END IF;
    IF NEW.queue_key <> '' THEN
        -- The newest older pending job of the key carries in its own
        -- wait_until the run_at of the ones before it.
        SELECT GREATEST(p.run_at, p.wait_until) INTO prev FROM jobs p
        WHERE p.queue_key = NEW.queue_key AND p.state = 'pending' AND p.id < NEW.id
        ORDER BY p.id DESC LIMIT 1;
        w := GREATEST(w, prev);
    END IF;
    NEW.wait_until := CASE WHEN w > NEW.updated_at THEN w END;
    RETURN NEW;
END $$;
-- +goose StatementEnd

-- The later jobs of a key follow its pending jobs' run_at both ways.
-- +goose StatementBegin
-- AFTER triggers run once the whole statement is done, and NEW is the row
-- as this statement wrote it: another row's trigger may since have
-- unparked it (Rearm moving a key's dead head and its later jobs at once),
-- so the wait passed on to the later jobs is read again.
CREATE FUNCTION jobs_wait_key() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    w timestamptz;
BEGIN
    IF NEW.queue_key = '' THEN
        RETURN NULL;
    END IF;
    IF OLD.state = 'pending' AND NEW.state <> 'pending' THEN
        UPDATE jobs SET wait_until = run_at
        WHERE queue_key = NEW.queue_key AND id > NEW.id AND wait_until IS NOT NULL AND wait_until > run_at;
    ELSIF OLD.state = 'pending' AND NEW.state = 'pending' AND NEW.run_at < OLD.run_at THEN
        UPDATE jobs SET wait_until = LEAST(wait_until, GREATEST(run_at, NEW.run_at))
        WHERE queue_key = NEW.queue_key AND id > NEW.id AND wait_until IS NOT NULL AND wait_until > run_at;
    ELSIF NEW.state = 'pending' AND (OLD.state <> 'pending' OR NEW.run_at > OLD.run_at) THEN
        SELECT s.wait_until INTO w FROM jobs s WHERE s.id = NEW.id AND s.state = 'pending';
        IF w IS NOT NULL THEN
            UPDATE jobs SET wait_until = w
            WHERE queue_key = NEW.queue_key AND state = 'pending' AND id > NEW.id
                AND (wait_until IS NULL OR wait_until < w);
        END IF;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- The claim (pending to running) and the end of a run (a running job
-- deleted, dead or pending again) fire no trigger function: a claimed job
-- was due, so whatever waited for it is due too, and a running job holds
-- back nothing by time. Both are the hot path of every job.
CREATE TRIGGER jobs_wait_new BEFORE INSERT ON jobs
    FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION jobs_wait_self();
CREATE TRIGGER jobs_wait_self BEFORE UPDATE OF state, run_at ON jobs
    FOR EACH ROW WHEN (NEW.state = 'pending' AND (OLD.state <> 'pending' OR NEW.run_at <> OLD.run_at))
    EXECUTE FUNCTION jobs_wait_self();
CREATE TRIGGER jobs_wait_key AFTER UPDATE OF state, run_at ON jobs
    FOR EACH ROW WHEN (NEW.queue_key <> '' AND ((OLD.state = 'pending' AND NEW.state <> 'running') OR NEW.state = 'pending'))
    EXECUTE FUNCTION jobs_wait_key();
-- Deleting pending jobs unparks what waited behind them once per
-- statement, not once per row: a mirror run ends hundreds of the jobs
-- queued behind it in one DELETE (queue.Absorb), and a per-row UPDATE each
-- took milliseconds on a busy key (seconds per DELETE).
-- +goose StatementBegin
CREATE FUNCTION jobs_wait_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobs j SET wait_until = j.run_at
    FROM (SELECT g.queue_key, MIN(g.id) AS id FROM gone g
          WHERE g.state = 'pending' AND g.queue_key <> '' GROUP BY g.queue_key) k
    WHERE j.queue_key = k.queue_key AND j.id > k.id AND j.wait_until IS NOT NULL AND j.wait_until > j.run_at;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER jobs_wait_gone AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION jobs_wait_gone();

-- The jobs already queued: each waits for the latest run_at among itself
-- and the older pending jobs of its key.
UPDATE jobs j SET wait_until = e.w
FROM (
    SELECT id, CASE WHEN queue_key = '' THEN run_at
        ELSE MAX(run_at) OVER (PARTITION BY queue_key ORDER BY id ROWS UNBOUNDED PRECEDING) END AS w
    FROM jobs WHERE state = 'pending'
) e
WHERE j.id = e.id AND e.w > now();

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
DROP TRIGGER jobs_wait_gone ON jobs;
DROP FUNCTION jobs_wait_gone();
DROP TRIGGER jobs_wait_key ON jobs;
DROP TRIGGER jobs_wait_self ON jobs;
DROP TRIGGER jobs_wait_new ON jobs;
DROP FUNCTION jobs_wait_key();
DROP FUNCTION jobs_wait_self();
ALTER TABLE jobs DROP COLUMN wait_until;
