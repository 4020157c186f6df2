package queue

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/store"
)

// ErrNotDead is returned by Requeue for a job that is not dead-lettered.
var ErrNotDead = errors.New("queue: no dead job with that id")

const jobColumns = `id, kind, workspace_id, queue_key, lane, payload, state, attempts, max_attempts,
	run_at, locked_by, locked_until, last_error, created_at, updated_at`

// readyJob holds when the pending job x may run now: it is due, of a kind
// this instance handles, and the head of its key (the oldest pending job of
// the key, with no job of the key running; an empty key shares nothing).
// The walk reads only jobs that are not parked (wait_until IS NULL, see
// unparkSQLite); a parked job cannot be ready, so that changes which jobs
// it reads, not what it finds. The checks stay whole: parking only ever
// errs towards a job it left out of the park, which the checks then skip.
//
// The two key checks are each one probe of jobs_key, read from the top
// down (MAX) and taken in turn (COALESCE stops at the first it finds):
// a job behind others of its key finds the one before it at once, and a
// key's running job, claimed last, is the newest running entry. Read from
// the bottom up, as NOT EXISTS did, both walked past the index entries of
// every job the key had finished, which PostgreSQL keeps until no open
// snapshot predates them and a VACUUM has run: behind a draining CRM
// binding's running head each job the walk read cost a walk of the key's
// history (issue 10's soak: claims of 5-18 s, BenchmarkClaim's hotdead).
// Only a key's real head still reads that history, once.
const readyJob = `x.state = 'pending' AND x.wait_until IS NULL AND x.run_at <= ? AND x.kind IN ?
			AND (x.queue_key = '' OR COALESCE(
				(SELECT MAX(o.id) FROM jobs o WHERE o.queue_key = x.queue_key AND o.state = 'pending' AND o.id < x.id),
				(SELECT MAX(r.id) FROM jobs r WHERE r.queue_key = x.queue_key AND r.state = 'running')) IS NULL)`

// Two claims implement one rule, fair at two levels: workspaces take turns,
// and within a workspace its lanes (channels, NewJob.Lane) take turns.
//
//   - A job's lane turn is its rank by id among its lane's ready jobs.
//   - A workspace orders its ready jobs by lane turn, and among equal lane
//     turns the lanes after the one it served last come first (then by
//     lane); a job's turn is its rank in that order.
//   - Ready jobs go by their turn, and among equal turns the workspaces
//     after the one served last come first (then by workspace).
//
// So a workspace with one job is served within one round however many jobs
// another has queued, and a channel with one job within one round of its
// workspace's channels however many another channel of it has queued. Both
// "served last" are kept by the claimer (Queue.cursor and laneCursors):
// without them the same workspace or lane would win every tie, claim after
// claim, and the others would wait for its backlog after all.
//
// The walk reads a few index entries per lane and serves a ready backlog of
// any length at the same cost (issue 10); the scan reads every pending job
// once, more cheaply per job than the walk's probes, so it takes over where
// the walk would have to read far.
//
// The walk, picksSQL:
//
//   - ws lists the workspaces with unparked pending jobs, one probe of
//     jobs_walk_lane each (a loose index scan: either engine would
//     otherwise read every pending job to find the distinct values);
//   - lanes lists each workspace's lanes the same way, one probe each;
//   - picks walks each lane's unparked pending jobs in id order, each step
//     one scalar subquery that stops at the next ready job, for at most as
//     many turns as the claim wants jobs (a job's turn in its workspace is
//     at least its lane turn). Scalar subqueries leave neither engine a
//     plan that scans jobs once per workspace, as SQLite chose for a join.
//
// A lane walks only its first window unparked jobs (bound is the next
// one's id, NULL when it has no more). Each job read in vain costs a probe,
// so a walk that came to its bound before its last turn gives up: then the
// walk claims nothing at all and the scan decides. Parking keeps a CRM
// outage's backlog (heads retrying an hour away, the rest of their keys
// behind them) out of the walk; what it still reads in vain is mostly the
// jobs behind a running head, and jobs of kinds this instance lacks. The
// scan ignores parking: it is the rule itself, and the tests hold the walk
// to it.
const picksSQL = `WITH RECURSIVE ws(w) AS (
		SELECT MIN(workspace_id) FROM jobs WHERE state = 'pending' AND wait_until IS NULL
		UNION ALL
		SELECT (SELECT MIN(p.workspace_id) FROM jobs p WHERE p.state = 'pending' AND p.wait_until IS NULL AND p.workspace_id > ws.w)
		FROM ws WHERE ws.w IS NOT NULL
	), lanes(w, l) AS (
		SELECT w, (SELECT MIN(p.lane) FROM jobs p WHERE p.state = 'pending' AND p.wait_until IS NULL AND p.workspace_id = ws.w)
		FROM ws WHERE w IS NOT NULL
		UNION ALL
		SELECT lanes.w, (SELECT MIN(p.lane) FROM jobs p
			WHERE p.state = 'pending' AND p.wait_until IS NULL AND p.workspace_id = lanes.w AND p.lane > lanes.l)
		FROM lanes WHERE lanes.l IS NOT NULL
	), picks(workspace_id, lane, bound, id, turn) AS (
		SELECT w, l, (SELECT b.id FROM jobs b WHERE b.state = 'pending' AND b.wait_until IS NULL AND b.workspace_id = lanes.w AND b.lane = lanes.l
				ORDER BY b.id LIMIT 1 OFFSET ?),
			CAST(0 AS bigint), 0
		FROM lanes WHERE l IS NOT NULL
		UNION ALL
		SELECT h.workspace_id, h.lane, h.bound, (SELECT x.id FROM jobs x
			WHERE x.workspace_id = h.workspace_id AND x.lane = h.lane AND x.id > h.id AND x.id < COALESCE(h.bound, 9223372036854775807)
				AND ` + readyJob + `
			ORDER BY x.id LIMIT 1), h.turn + 1
		FROM picks h WHERE h.id IS NOT NULL AND h.turn < ?
	)`

// laneCursorsSQLite and laneCursorsPostgres read the lane each workspace
// served last (laneCursors, as a JSON object) into rows of (workspace_id,
// lane); a workspace without a row served the empty lane last.
const (
	laneCursorsSQLite   = `SELECT key AS workspace_id, value AS lane FROM json_each(?)`
	laneCursorsPostgres = `SELECT key AS workspace_id, value AS lane FROM jsonb_each_text(CAST(? AS jsonb))`
)

// rankSQL ranks the rows of lane turns %[3]s (id, workspace_id, lane,
// lane_turn) by their turn in their workspace: lane turn first, then the
// lanes after the workspace's last served lane (from %[2]s), then by lane.
// %[1]s is a collation for PostgreSQL, so that it compares lanes bytewise
// as SQLite and nextLaneCursors do. A job's turn is at least its lane
// turn, so only the lane turns up to the claim's size (the last ?) can
// make the claim: the others are left out before the second ranking, which
// then sorts a few rows per lane rather than every ready job again.
const rankSQL = `SELECT r.id, r.workspace_id,
		ROW_NUMBER() OVER (PARTITION BY r.workspace_id
			ORDER BY r.lane_turn, CASE WHEN r.lane %[1]s > COALESCE(lc.lane, '') THEN 0 ELSE 1 END, r.lane %[1]s) AS turn
	FROM (%[3]s) r
	LEFT JOIN (%[2]s) lc ON lc.workspace_id = r.workspace_id
	WHERE r.lane_turn <= ?`

// walkOrder ranks the walk's picks; it yields none when a walk gave up.
// %[1]s is a collation for PostgreSQL, so that it compares workspace ids
// bytewise as SQLite and nextCursor do; %[2]s reads the lane cursors.
const walkOrder = `SELECT h.id FROM (` + rankSQL + `) h
	WHERE NOT EXISTS (SELECT 1 FROM picks t WHERE t.id IS NULL AND t.bound IS NOT NULL)
	ORDER BY h.turn, CASE WHEN h.workspace_id %[1]s > ? THEN 0 ELSE 1 END, h.workspace_id %[1]s, h.id`

// walkLaneTurns are the walk's picks as rankSQL takes them.
const walkLaneTurns = `SELECT p.id, p.workspace_id, p.lane, p.turn AS lane_turn FROM picks p WHERE p.turn > 0 AND p.id IS NOT NULL`

// keyHeadsSQL selects the head of every key: its oldest pending job. Only
// a head may run; the rest of the key waits behind it.
const keyHeadsSQL = `SELECT MIN(o.id) FROM jobs o WHERE o.state = 'pending' AND o.queue_key <> '' GROUP BY o.queue_key`

// scanSQL is the scan's lane turns: it ranks every ready job in its lane.
// The heads are found by two uncorrelated subqueries that each engine runs
// once per claim; correlated NOT EXISTS probes per pending job were several
// times slower on a large backlog. It reads every pending job, a hot key's
// backlog too; on PostgreSQL scanHeadsSQL takes its place.
const scanSQL = `SELECT c.id, c.workspace_id, c.lane,
		ROW_NUMBER() OVER (PARTITION BY c.workspace_id, c.lane ORDER BY c.id) AS lane_turn
	FROM jobs c
	WHERE c.state = 'pending' AND c.run_at <= ? AND c.kind IN ?
		AND (c.queue_key = '' OR (
			c.id IN (` + keyHeadsSQL + `)
			AND c.queue_key NOT IN (SELECT r.queue_key FROM jobs r WHERE r.state = 'running')))`

// scanHeadsSQL is scanSQL for PostgreSQL. It reads the candidates
// rather than every pending job, so a hot key (tens of thousands of jobs
// behind a running head, a CRM binding draining after an outage) costs it
// two probes, not a read of its backlog:
//
//   - keys lists the distinct keys with pending jobs, one probe of jobs_key
//     each (a loose index scan, as ws in picksSQL);
//   - each key's oldest pending job is taken, one probe of jobs_key, unless
//     a job of the key is running;
//   - the unkeyed pending jobs come from jobs_key's empty key.
//
// Those ids are gathered into an array once, and only then are their rows
// read, by primary key, and checked for being due and of a handled kind,
// and ranked in their lane. Joined instead, the plan rested on the
// statistics: on a table last analysed nearly empty (a fresh database, the
// first minute of a burst) PostgreSQL took the due pending jobs for one
// row and gathered the heads again for each of them, thousands of probes
// per job, and claims took 4-12 s until the next ANALYZE (issue 10's soak
// starts). On SQLite this took seconds a claim on a hot key of 5,000 jobs
// (its plan was not looked into), so SQLite keeps scanSQL.
const scanHeadsSQL = `WITH RECURSIVE keys(k) AS (
		SELECT MIN(queue_key) FROM jobs WHERE state = 'pending' AND queue_key > ''
		UNION ALL
		SELECT (SELECT MIN(p.queue_key) FROM jobs p WHERE p.state = 'pending' AND p.queue_key > keys.k)
		FROM keys WHERE keys.k IS NOT NULL
	)
	SELECT c.id, c.workspace_id, c.lane,
		ROW_NUMBER() OVER (PARTITION BY c.workspace_id, c.lane ORDER BY c.id) AS lane_turn
	FROM jobs c
	WHERE c.id = ANY (ARRAY(
			SELECT (SELECT MIN(o.id) FROM jobs o WHERE o.queue_key = keys.k AND o.state = 'pending')
			FROM keys
			WHERE keys.k IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.queue_key = keys.k AND r.state = 'running')
			UNION ALL
			SELECT u.id FROM jobs u WHERE u.queue_key = '' AND u.state = 'pending'))
		AND c.state = 'pending' AND c.run_at <= ? AND c.kind IN ?`

// scanOrder is walkOrder for the scan.
const scanOrder = `ORDER BY h.turn, CASE WHEN h.workspace_id %[1]s > ? THEN 0 ELSE 1 END, h.workspace_id %[1]s, h.id`

const claimSet = `UPDATE jobs
SET state = 'running', attempts = attempts + 1, locked_by = ?, locked_until = ?, updated_at = ?
WHERE id IN (`

// On SQLite the single writer makes one UPDATE atomic by itself. Selecting
// straight from the ranked table matters for the scan: joined back to jobs,
// SQLite re-ran the window query for every job.
var (
	walkSQLite = claimSet + picksSQL + `
	` + fmt.Sprintf(walkOrder, "", laneCursorsSQLite, walkLaneTurns) + `
	LIMIT ?)
RETURNING ` + jobColumns
	scanSQLite = claimSet + `
	SELECT h.id FROM (` + fmt.Sprintf(rankSQL, "", laneCursorsSQLite, scanSQL) + `) h
	` + fmt.Sprintf(scanOrder, "") + `
	LIMIT ?)
RETURNING ` + jobColumns
)

// On PostgreSQL several instances claim side by side: each locks its rows
// with SKIP LOCKED, and LIMIT counts only the rows it got, so a busy peer
// does not shrink the batch. Under READ COMMITTED a row changed since the
// statement's snapshot is re-checked against the outer WHERE once locked,
// hence the repeated state and run_at conditions.
//
// The walk's ranked picks come as an array: PostgreSQL cannot tell how many
// rows the recursive walk yields, and joined to jobs directly it chose to
// hash the whole table; an array it unnests as a handful of rows, each
// looked up by primary key in rank order. PostgreSQL refuses FOR UPDATE in
// a query with window functions, so the scan's ranking sits in a derived
// table and only j is locked.
var (
	walkPostgres = claimSet + `
	SELECT j.id FROM unnest(ARRAY(` + picksSQL + `
		` + fmt.Sprintf(walkOrder, `COLLATE "C"`, laneCursorsPostgres, walkLaneTurns) + `
	)) WITH ORDINALITY AS u(id, rank)
	JOIN jobs j ON j.id = u.id
	WHERE j.state = 'pending' AND j.run_at <= ?
	ORDER BY u.rank
	LIMIT ?
	FOR UPDATE OF j SKIP LOCKED)
RETURNING ` + jobColumns
	scanPostgres = claimSet + `
	SELECT j.id FROM jobs j JOIN (` + fmt.Sprintf(rankSQL, `COLLATE "C"`, laneCursorsPostgres, scanHeadsSQL) + `) h ON h.id = j.id
	WHERE j.state = 'pending' AND j.run_at <= ?
	` + fmt.Sprintf(scanOrder, `COLLATE "C"`) + `
	LIMIT ?
	FOR UPDATE OF j SKIP LOCKED)
RETURNING ` + jobColumns
)

// Jobs due later, and the jobs of a key behind one due later, are parked
// (jobs.wait_until, kept by the triggers of migration 00032) and left out of
// the walk, so a blocked backlog costs the walk nothing. Each claim first
// unparks those whose wait is over. On PostgreSQL a peer that is unparking
// the same rows is not waited for: it is about to make them walkable.
// PostgreSQL's statement also turns JIT off (see noJIT): one round trip
// for both.
const (
	unparkSQLite   = `UPDATE jobs SET wait_until = NULL WHERE wait_until <= ?`
	unparkPostgres = `WITH u AS (UPDATE jobs SET wait_until = NULL
		WHERE id IN (SELECT p.id FROM jobs p WHERE p.wait_until <= ? FOR NO KEY UPDATE SKIP LOCKED) RETURNING 1)
	SELECT ` + noJIT + `, (SELECT COUNT(*) FROM u)`
)

// settlePostgres cuts short the parks that outlived their reason. The
// triggers keep wait_until right for every statement taken one at a time,
// and SQLite runs one transaction at a time. On PostgreSQL two can cross:
// an enqueue parks behind its key's delayed head while another transaction,
// which it cannot see yet, wakes or deletes that head and cannot see the
// new job either. That job would wait for the head's old run_at (for a
// retry an hour at most, for a snooze as long as it was). settle bounds
// every park by what it can always wait for: its own run_at, or the run_at
// of its key's oldest pending job. It only ever lowers a wait, so it cannot
// race into a worse one; a job it unparks that is still held back by a
// later-due job of its key in between costs the walk a row until the next
// retry of that key parks it again.
const settlePostgres = `UPDATE jobs f SET wait_until = b.w
	FROM (SELECT p.id, CASE WHEN p.queue_key = '' THEN p.run_at ELSE GREATEST(p.run_at, (SELECT h.run_at FROM jobs h
			WHERE h.queue_key = p.queue_key AND h.state = 'pending' ORDER BY h.id LIMIT 1)) END AS w
		FROM jobs p WHERE p.state = 'pending' AND p.wait_until > p.run_at) b
	WHERE f.id = b.id AND f.state = 'pending' AND f.wait_until > b.w`

// settleEvery is how many reaps pass between two settles: a crossing is
// rare, and settling reads every job parked behind its key.
const settleEvery = 10

// settle runs settlePostgres; see there.
func (q *Queue) settle(ctx context.Context) (int64, error) {
	if q.db.Dialect != store.Postgres {
		return 0, nil
	}
	res := q.db.Gorm.WithContext(ctx).Exec(settlePostgres)
	if res.Error != nil {
		return 0, fmt.Errorf("queue: settle parked jobs: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// walkWindow bounds how many pending jobs of a workspace the walk reads
// before it leaves the claim to the scan: about what the scan costs per
// workspace on a backlog of a few thousand jobs.
const walkWindow = 100

// noJIT turns PostgreSQL's JIT compilation off for the claim. The planner
// cannot know how far the walk goes and prices it by the backlog: with
// most pending jobs delayed its estimate passed the JIT threshold, and
// compiling took over a second for a claim that runs in a millisecond.
// Local to the transaction, as SET LOCAL.
//
// The claim's statements are planned afresh each time (about 2.8 ms of a
// 3.5 ms claim on a small backlog), and must stay so: a generic plan,
// made once per connection, was tried and fell over in a soak's first
// minute. Made on the still empty table, it read jobs_ready for every
// probe (a whole pending backlog per key) and stayed that way as the
// table grew, claims of 1.4-9.3 s, until an ANALYZE replaced it; a fresh
// plan sees the table's size even when its statistics are old.
const noJIT = `set_config('jit', 'off', true)`

// claim marks up to n ready jobs as running by this instance. The walk goes
// first; when it claims nothing (nothing ready, a walk gave up, or every
// pick was locked by a peer) the scan decides, so the result is always the
// scan's, only cheaper when the walk suffices.
func (q *Queue) claim(ctx context.Context, n int) ([]*Job, error) {
	// Once the UPDATE has run, abandoning its result would leave the jobs
	// claimed by nobody until their lease expires, so stopping does not
	// cancel a claim; the timeout only guards against a hung database.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := store.Now()
	until := now.Add(q.opts.Lease)
	// A string: gorm would expand a []byte into a list of its bytes.
	laneJSON, err := json.Marshal(q.laneCursors)
	if err != nil {
		return nil, fmt.Errorf("queue: claim: lane cursors: %w", err)
	}
	lanes := string(laneJSON)
	var jobs []*Job
	run := func(tx *gorm.DB, query string, args ...any) error {
		rows, err := tx.Raw(query, append([]any{q.opts.InstanceID, until, now}, args...)...).Rows()
		if err != nil {
			return err
		}
		jobs, err = scanJobs(rows)
		return err
	}
	if q.db.Dialect == store.Postgres {
		// A local setting (noJIT) lasts until the commit, so the claim
		// gets a transaction of its own; it is still one commit per claim,
		// and the unparking commits with it.
		err = q.db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(unparkPostgres, now).Error; err != nil {
				return err
			}
			if err := run(tx, walkPostgres, q.window, now, q.kinds, n, lanes, n, q.cursor, now, n); err != nil || len(jobs) > 0 || q.walkOnly {
				return err
			}
			return run(tx, scanPostgres, now, q.kinds, lanes, n, now, q.cursor, n)
		})
	} else {
		db := q.db.Gorm.WithContext(ctx)
		if err = db.Exec(unparkSQLite, now).Error; err != nil {
			return nil, fmt.Errorf("queue: claim: %w", err)
		}
		if err = run(db, walkSQLite, q.window, now, q.kinds, n, lanes, n, q.cursor, n); err == nil && len(jobs) == 0 && !q.walkOnly {
			err = run(db, scanSQLite, now, q.kinds, lanes, n, q.cursor, n)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("queue: claim: %w", err)
	}
	slices.SortFunc(jobs, func(a, b *Job) int { return cmp.Compare(a.ID, b.ID) })
	q.cursor = nextCursor(q.cursor, jobs)
	nextLaneCursors(q.laneCursors, jobs)
	return jobs, nil
}

// nextCursor returns the workspace served last in a claim ordered as by
// fairOrder: first the workspaces after cur, then, wrapping around, those up
// to and including it.
func nextCursor(cur string, jobs []*Job) string {
	if len(jobs) == 0 {
		return cur
	}
	var after, wrapped string
	var haveAfter, haveWrapped bool
	for _, j := range jobs {
		ws := j.WorkspaceID
		if ws > cur {
			if !haveAfter || ws > after {
				after, haveAfter = ws, true
			}
		} else if !haveWrapped || ws > wrapped {
			wrapped, haveWrapped = ws, true
		}
	}
	if haveWrapped {
		return wrapped
	}
	return after
}

// nextLaneCursors records in cursors, for each workspace in a claim, the
// lane it served last: the lane of its last job in the order of rankSQL,
// whose claimed jobs of a lane are that lane's first turns, so a job's
// rank by id among them is its lane turn. jobs are in id order. The empty
// lane is the cursor of a workspace without an entry, so it is not kept.
func nextLaneCursors(cursors map[string]string, jobs []*Job) {
	type last struct {
		turn  int
		after bool // the lane comes after the workspace's cursor
		lane  string
	}
	turns := map[[2]string]int{}
	lasts := map[string]last{}
	for _, j := range jobs {
		turns[[2]string{j.WorkspaceID, j.Lane}]++
		cand := last{turns[[2]string{j.WorkspaceID, j.Lane}], j.Lane > cursors[j.WorkspaceID], j.Lane}
		cur, seen := lasts[j.WorkspaceID]
		// Later in the order: a higher lane turn; at the same turn the
		// lanes after the cursor come first, then the others, each by lane.
		if !seen || cand.turn > cur.turn || cand.turn == cur.turn &&
			(cur.after && !cand.after || cur.after == cand.after && cand.lane > cur.lane) {
			lasts[j.WorkspaceID] = cand
		}
	}
	for ws, l := range lasts {
		if l.lane == "" {
			delete(cursors, ws)
		} else {
			cursors[ws] = l.lane
		}
	}
}

// The outcome statements only apply while this run still holds the job:
// locked_by and attempts (raised by every claim) fence off a run whose
// lease expired and whose job was claimed again, here or elsewhere.
const owned = ` WHERE id = ? AND state = 'running' AND locked_by = ? AND attempts = ?`

func (q *Queue) complete(ctx context.Context, j *Job) (bool, error) {
	res := q.db.Gorm.WithContext(ctx).Exec(`DELETE FROM jobs`+owned, j.ID, q.opts.InstanceID, j.Attempts)
	if res.Error != nil {
		return false, fmt.Errorf("queue: complete job %d: %w", j.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

func (q *Queue) retry(ctx context.Context, j *Job, at time.Time, msg string) (bool, error) {
	res := q.db.Gorm.WithContext(ctx).Exec(`UPDATE jobs
		SET state = 'pending', run_at = ?, last_error = ?, locked_by = '', locked_until = NULL, updated_at = ?`+owned,
		at, msg, store.Now(), j.ID, q.opts.InstanceID, j.Attempts)
	if res.Error != nil {
		return false, fmt.Errorf("queue: retry job %d: %w", j.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// snooze puts the job back as pending until at and takes back the attempt
// its claim counted. The id is kept, so the job stays the head of its key.
func (q *Queue) snooze(ctx context.Context, j *Job, at time.Time, msg string) (bool, error) {
	if at.IsZero() {
		at = store.Now()
	}
	// Same normalisation as store.Now, so SQLite's text times compare
	// correctly with the ones the workers pass.
	at = at.UTC().Truncate(time.Microsecond)
	res := q.db.Gorm.WithContext(ctx).Exec(`UPDATE jobs
		SET state = 'pending', attempts = attempts - 1, run_at = ?, last_error = ?, locked_by = '', locked_until = NULL, updated_at = ?`+owned,
		at, msg, store.Now(), j.ID, q.opts.InstanceID, j.Attempts)
	if res.Error != nil {
		return false, fmt.Errorf("queue: snooze job %d: %w", j.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

func (q *Queue) bury(ctx context.Context, j *Job, msg string) (bool, error) {
	res := q.db.Gorm.WithContext(ctx).Exec(`UPDATE jobs
		SET state = 'dead', last_error = ?, locked_by = '', locked_until = NULL, updated_at = ?`+owned,
		msg, store.Now(), j.ID, q.opts.InstanceID, j.Attempts)
	if res.Error != nil {
		return false, fmt.Errorf("queue: dead-letter job %d: %w", j.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// reap hands out again the jobs whose lease expired: their worker crashed
// or hangs. The attempt is counted, so a job that kills its worker every
// time ends up dead instead of looping.
func (q *Queue) reap(ctx context.Context) (int, error) {
	now := store.Now()
	rows, err := q.db.Gorm.WithContext(ctx).Raw(`UPDATE jobs
		SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'pending' END,
			last_error = 'lease of ' || locked_by || ' expired',
			locked_by = '', locked_until = NULL, updated_at = ?
		WHERE state = 'running' AND locked_until < ?
		RETURNING `+jobColumns, now, now).Rows()
	if err != nil {
		return 0, fmt.Errorf("queue: reap: %w", err)
	}
	jobs, err := scanJobs(rows)
	for _, j := range jobs {
		q.log.Warn("queue: lease expired", "kind", j.Kind, "job", j.ID, "workspace", j.WorkspaceID,
			"attempt", j.Attempts, "state", j.State, "err", j.LastError)
	}
	if err != nil {
		return len(jobs), fmt.Errorf("queue: reap: %w", err)
	}
	return len(jobs), nil
}

// wakeBatch bounds the keys in one statement, below either engine's limit
// on bound parameters.
const wakeBatch = 500

// Wake makes the pending jobs of a kind with the given keys due now: a head
// snoozed until later, or waiting out a retry's backoff, runs at once. It
// is for when what such jobs wait for has changed (a limit was raised);
// a job that still has to wait snoozes again. It returns how many jobs it
// moved.
func (q *Queue) Wake(ctx context.Context, kind string, keys []string) (int64, error) {
	var woken int64
	for chunk := range slices.Chunk(keys, wakeBatch) {
		now := store.Now()
		res := q.db.Gorm.WithContext(ctx).Exec(`UPDATE jobs SET run_at = ?, updated_at = ?
			WHERE state = 'pending' AND kind = ? AND queue_key IN ? AND run_at > ?`, now, now, kind, chunk, now)
		if res.Error != nil {
			return woken, fmt.Errorf("queue: wake %s jobs: %w", kind, res.Error)
		}
		woken += res.RowsAffected
	}
	if woken > 0 {
		q.Notify()
	}
	return woken, nil
}

// Stats counts the jobs in each state; pending, running and dead are always
// present.
func (q *Queue) Stats(ctx context.Context) (map[string]int64, error) {
	rows, err := q.db.Gorm.WithContext(ctx).Raw(`SELECT state, COUNT(*) FROM jobs GROUP BY state`).Rows()
	if err != nil {
		return nil, fmt.Errorf("queue: stats: %w", err)
	}
	defer rows.Close()
	stats := map[string]int64{StatePending: 0, StateRunning: 0, StateDead: 0}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("queue: stats: %w", err)
		}
		stats[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: stats: %w", err)
	}
	return stats, nil
}

// Dead lists a workspace's dead-lettered jobs, newest first; an empty
// workspaceID lists those of all workspaces. limit <= 0 means 100.
func (q *Queue) Dead(ctx context.Context, workspaceID string, limit int) ([]Job, error) {
	if limit <= 0 {
		limit = 100
	}
	where, args := `state = 'dead'`, []any{}
	if workspaceID != "" {
		where += ` AND workspace_id = ?`
		args = append(args, workspaceID)
	}
	rows, err := q.db.Gorm.WithContext(ctx).Raw(`SELECT `+jobColumns+` FROM jobs
		WHERE `+where+` ORDER BY id DESC LIMIT ?`, append(args, limit)...).Rows()
	if err != nil {
		return nil, fmt.Errorf("queue: dead jobs: %w", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("queue: dead jobs: %w", err)
	}
	out := make([]Job, len(jobs))
	for i, j := range jobs {
		out[i] = *j
	}
	return out, nil
}

// Requeue gives a dead job a fresh set of attempts, to run now.
func (q *Queue) Requeue(ctx context.Context, id int64) error {
	now := store.Now()
	res := q.db.Gorm.WithContext(ctx).Exec(`UPDATE jobs
		SET state = 'pending', attempts = 0, run_at = ?, locked_by = '', locked_until = NULL, updated_at = ?
		WHERE id = ? AND state = 'dead'`, now, now, id)
	if res.Error != nil {
		return fmt.Errorf("queue: requeue job %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("queue: requeue job %d: %w", id, ErrNotDead)
	}
	q.Notify()
	return nil
}

// scanJobs reads and closes rows of jobColumns.
func scanJobs(rows *sql.Rows) ([]*Job, error) {
	defer rows.Close()
	var jobs []*Job
	for rows.Next() {
		j := new(Job)
		var payload []byte
		err := rows.Scan(&j.ID, &j.Kind, &j.WorkspaceID, &j.Key, &j.Lane, &payload, &j.State, &j.Attempts, &j.MaxAttempts,
			dbTime{&j.RunAt}, &j.LockedBy, dbTime{&j.LockedUntil}, &j.LastError, dbTime{&j.CreatedAt}, dbTime{&j.UpdatedAt})
		if err != nil {
			return jobs, err
		}
		j.Payload = payload
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// dbTime scans a time from either engine. SQLite hands back text where it
// cannot see the column's declared type, as in RETURNING; NULL is the zero
// time.
type dbTime struct{ t *time.Time }

// Text layouts SQLite's driver writes and reads.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	time.RFC3339Nano,
}

func (d dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d.t = time.Time{}
		return nil
	case time.Time:
		*d.t = x.UTC()
		return nil
	case []byte:
		return d.parse(string(x))
	case string:
		return d.parse(x)
	}
	return fmt.Errorf("queue: cannot scan %T into a time", v)
}

func (d dbTime) parse(s string) error {
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			*d.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("queue: unrecognised time %q", s)
}

// Rearm gives a workspace's pending and dead jobs of the given kinds a
// fresh set of attempts, due now: what they waited for (a CRM's
// authorisation) is back. It is a function on the database rather than a
// method because the router that calls it holds no queue.
func Rearm(ctx context.Context, db *store.DB, workspaceID string, kinds ...string) error {
	return RearmIn(db.Gorm.WithContext(ctx), workspaceID, kinds...)
}

// RearmIn is Rearm in tx, so that a job re-arming others (a payment
// probe) commits that with its own end (Done).
func RearmIn(tx *gorm.DB, workspaceID string, kinds ...string) error {
	now := store.Now()
	err := tx.Exec(
		"UPDATE jobs SET state = ?, run_at = ?, attempts = 0, updated_at = ? WHERE workspace_id = ? AND kind IN ? AND state IN (?, ?)",
		StatePending, now, now, workspaceID, kinds, StatePending, StateDead).Error
	if err != nil {
		return fmt.Errorf("queue: rearm %v jobs of %s: %w", kinds, workspaceID, err)
	}
	return nil
}

// RearmDead gives a workspace's dead jobs of the given kinds a fresh set of
// attempts, due now, and leaves the pending ones at their time: for a
// timer (a mirror window's close) the time is the point, and one run early
// finds nothing due and is gone.
func RearmDead(ctx context.Context, db *store.DB, workspaceID string, kinds ...string) error {
	return RearmDeadIn(db.Gorm.WithContext(ctx), workspaceID, kinds...)
}

// RearmDeadIn is RearmDead in tx (see RearmIn).
func RearmDeadIn(tx *gorm.DB, workspaceID string, kinds ...string) error {
	now := store.Now()
	err := tx.Exec(
		"UPDATE jobs SET state = ?, run_at = ?, attempts = 0, updated_at = ? WHERE workspace_id = ? AND kind IN ? AND state = ?",
		StatePending, now, now, workspaceID, kinds, StateDead).Error
	if err != nil {
		return fmt.Errorf("queue: rearm dead %v jobs of %s: %w", kinds, workspaceID, err)
	}
	return nil
}

// Busy counts the jobs running or ready now (due and the head of their
// key); none means the work handed to the queue so far is done, or waits
// for a time (tests wait for that). A due job behind its key's parked head
// is not ready: it runs after the head, not now.
//
// "Now" is read only once the count's snapshot is taken. A job's run_at
// is stamped by the clock before its transaction commits, so a job due at
// its enqueue that the snapshot sees has a run_at before that snapshot,
// hence before now. Read earlier, as it once was, now could precede the
// snapshot: a finishing job that queued its follow-up in its last commit
// (the mirror window queueing its send) was gone, and the follow-up not
// yet due, so Busy said 0 while work was ready (tests waiting for an idle
// queue went on too early; on SQLite the count waits for the one
// connection, which made that likely). The snapshot is the transaction's:
// SQLite's by its one connection, PostgreSQL's by REPEATABLE READ, so the
// two counts see the same jobs, read-only.
func (q *Queue) Busy(ctx context.Context) (int64, error) {
	var opts *sql.TxOptions
	if q.db.Dialect == store.Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	var running, ready int64
	err := q.db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The first statement takes the snapshot.
		if err := tx.Table("jobs").Where("state = ?", StateRunning).Count(&running).Error; err != nil {
			return err
		}
		return tx.Table("jobs").Where(`state = ? AND run_at <= ? AND (queue_key = '' OR id IN (`+keyHeadsSQL+`))`,
			StatePending, store.Now()).Count(&ready).Error
	}, opts)
	if err != nil {
		return 0, fmt.Errorf("queue: busy jobs: %w", err)
	}
	return running + ready, nil
}
