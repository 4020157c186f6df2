package queue_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
	"github.com/switchboard/switchboard/migrations"
)

// unsoundWaits lists the pending jobs parked later than they could run: a
// job may wait for its own run_at or for the run_at of an older pending job
// of its key, never longer. Any row here is a job the walk would hide.
const unsoundWaits = `SELECT j.id FROM jobs j
	WHERE j.state = 'pending' AND j.wait_until IS NOT NULL AND j.wait_until > j.run_at
		AND NOT EXISTS (SELECT 1 FROM jobs g WHERE j.queue_key <> '' AND g.queue_key = j.queue_key
			AND g.state = 'pending' AND g.id < j.id AND g.run_at >= j.wait_until)`

// sharedKeys lists the keys with more than one job running.
const sharedKeys = `SELECT queue_key FROM jobs WHERE state = 'running' AND queue_key <> ''
	GROUP BY queue_key HAVING COUNT(*) > 1`

func ids(t *testing.T, db *store.DB, query string, args ...any) []int64 {
	t.Helper()
	var out []int64
	if err := db.Gorm.Raw(query, args...).Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

// TestParkingNeverHidesAReadyJob drives the same random history through
// three databases, one queue each: one that always walks (and so sees only
// the jobs that are not parked), one whose walks often give up, and one
// that always scans, which reads every pending job and ignores parking.
// The history has everything that moves a job's state or run_at: enqueues
// due now and an hour away, completions, retries and snoozes an hour away
// and due at once, dead letters, leases that expire and are reaped, Wake,
// Rearm, RearmDead, Requeue, and a run_at, a state or a job changed by hand
// (as tests, operators and an absorbing handler do). After each step every claim must take
// the same jobs from the three, no key may run twice, and no pending job
// may be parked later than its key allows.
func TestParkingNeverHidesAReadyJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		open := storetest.SQLite
		if db.Dialect == store.Postgres {
			open = storetest.Postgres
		}
		ctx := context.Background()
		windows := []int{1 << 20, 3, 0}
		dbs := make([]*store.DB, len(windows))
		qs := make([]*queue.Queue, len(windows))
		for i, w := range windows {
			dbs[i] = db
			if i > 0 {
				dbs[i] = open(t)
			}
			qs[i] = newQueue(t, dbs[i], queue.Options{InstanceID: fmt.Sprintf("q%d", i)})
			qs[i].Handle("send", func(context.Context, *queue.Job) error { return nil })
			qs[i].SetWindow(w)
		}
		// The scan would make up for a job parked wrongly.
		qs[0].SetWalkOnly()
		r := rand.New(rand.NewPCG(7, 11))
		workspaces := []string{"", "a", "b", "c"}
		keys := []string{"", "k0", "k1", "k2", "k3", "k4", "k5"}
		lanes := []string{"", "ch-1", "ch-2"}
		// pick chooses one of the ids that query finds in the first
		// database; the others hold the same jobs under the same ids.
		pick := func(query string) (int64, bool) {
			found := ids(t, dbs[0], query)
			if len(found) == 0 {
				return 0, false
			}
			return found[r.IntN(len(found))], true
		}
		each := func(f func(i int, d *store.DB, q *queue.Queue) error) {
			for i := range dbs {
				if err := f(i, dbs[i], qs[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		claimed, parkedSeen := 0, 0
		for round := range 300 {
			var batch []queue.NewJob
			for range r.IntN(4) {
				j := queue.NewJob{Kind: "send", WorkspaceID: workspaces[r.IntN(len(workspaces))],
					Key: keys[r.IntN(len(keys))], Lane: lanes[r.IntN(len(lanes))], Payload: round}
				if r.IntN(4) == 0 {
					j.RunAt = time.Now().Add(time.Hour)
				}
				if r.IntN(12) == 0 {
					j.Kind = "other"
				}
				batch = append(batch, j)
			}
			each(func(_ int, d *store.DB, _ *queue.Queue) error { enqueue(t, d, batch...); return nil })

			switch r.IntN(10) {
			case 0:
				ks := []string{keys[1+r.IntN(len(keys)-1)], keys[1+r.IntN(len(keys)-1)]}
				each(func(_ int, _ *store.DB, q *queue.Queue) error { _, err := q.Wake(ctx, "send", ks); return err })
			case 1:
				ws := workspaces[r.IntN(len(workspaces))]
				each(func(_ int, d *store.DB, _ *queue.Queue) error { return queue.Rearm(ctx, d, ws, "send") })
			case 2:
				ws := workspaces[r.IntN(len(workspaces))]
				each(func(_ int, d *store.DB, _ *queue.Queue) error { return queue.RearmDead(ctx, d, ws, "send", "other") })
			case 3:
				if id, ok := pick(`SELECT id FROM jobs WHERE state = 'dead' ORDER BY id`); ok {
					each(func(_ int, _ *store.DB, q *queue.Queue) error { return q.Requeue(ctx, id) })
				}
			case 4:
				// A test making a delayed job due by hand.
				if id, ok := pick(`SELECT id FROM jobs WHERE state = 'pending' AND run_at > updated_at ORDER BY id`); ok {
					past := store.Now().Add(-time.Second)
					each(func(_ int, d *store.DB, _ *queue.Queue) error {
						return d.Gorm.Exec(`UPDATE jobs SET run_at = ? WHERE id = ?`, past, id).Error
					})
				}
			case 5:
				// A handler absorbing a pending job of its key, often one
				// that holds back later jobs.
				query := `SELECT id FROM jobs WHERE state = 'pending' ORDER BY id`
				if r.IntN(2) == 0 {
					query = `SELECT id FROM jobs j WHERE state = 'pending' AND EXISTS (SELECT 1 FROM jobs f
						WHERE f.queue_key = j.queue_key AND j.queue_key <> '' AND f.id > j.id AND f.wait_until > f.run_at) ORDER BY id`
				}
				if id, ok := pick(query); ok {
					each(func(_ int, d *store.DB, _ *queue.Queue) error {
						return d.Gorm.Exec(`DELETE FROM jobs WHERE id = ?`, id).Error
					})
				}
			case 8:
				// An operator dead-letters a pending job by hand.
				if id, ok := pick(`SELECT id FROM jobs WHERE state = 'pending' ORDER BY id`); ok {
					each(func(_ int, d *store.DB, _ *queue.Queue) error {
						return d.Gorm.Exec(`UPDATE jobs SET state = 'dead' WHERE id = ?`, id).Error
					})
				}
			case 6, 7:
				// The leases of the jobs left running run out.
				past := store.Now().Add(-time.Second)
				each(func(_ int, d *store.DB, q *queue.Queue) error {
					if err := d.Gorm.Exec(`UPDATE jobs SET locked_until = ? WHERE state = 'running'`, past).Error; err != nil {
						return err
					}
					_, err := q.Reap(ctx)
					return err
				})
			}

			n := 1 + r.IntN(4)
			claims := make([][]*queue.Job, len(qs))
			for i, q := range qs {
				jobs, err := q.Claim(ctx, n)
				if err != nil {
					t.Fatal(err)
				}
				claims[i] = jobs
				var got, want []int64
				for _, j := range jobs {
					got = append(got, j.ID)
				}
				for _, j := range claims[0] {
					want = append(want, j.ID)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d, claim of %d: window %d claimed %v, window %d claimed %v",
						round, n, windows[i], got, windows[0], want)
				}
			}
			claimed += len(claims[0])
			for k := range claims[0] {
				outcome := r.IntN(10)
				later := time.Now().Add(time.Hour)
				each(func(i int, _ *store.DB, q *queue.Queue) error {
					j := claims[i][k]
					var err error
					switch outcome {
					case 0, 1, 2:
						_, err = q.Complete(ctx, j)
					case 3:
						_, err = q.Retry(ctx, j, later)
					case 4:
						_, err = q.Retry(ctx, j, time.Now().Add(-time.Second))
					case 5:
						_, err = q.SnoozeClaimed(ctx, j, later)
					case 6:
						_, err = q.SnoozeClaimed(ctx, j, time.Time{})
					case 7:
						_, err = q.Bury(ctx, j)
					}
					// 8, 9: left running until a reap.
					return err
				})
			}

			for i, d := range dbs {
				if bad := ids(t, d, unsoundWaits); len(bad) > 0 {
					t.Fatalf("round %d, window %d: jobs %v parked longer than their key holds them", round, windows[i], bad)
				}
				var shared []string
				if err := d.Gorm.Raw(sharedKeys).Scan(&shared).Error; err != nil {
					t.Fatal(err)
				}
				if len(shared) > 0 {
					t.Fatalf("round %d, window %d: keys %v run twice", round, windows[i], shared)
				}
			}
			parkedSeen += len(ids(t, dbs[0], `SELECT id FROM jobs WHERE state = 'pending' AND wait_until > run_at`))
		}
		// The history must have parked jobs behind their key's head and
		// claimed plenty, or it proved nothing.
		if claimed < 200 || parkedSeen < 100 {
			t.Errorf("%d claims compared, %d parked followers seen", claimed, parkedSeen)
		}
		t.Logf("%d claims compared, %d parked followers seen", claimed, parkedSeen)
	})
}

// TestParkingFollowsTheKeysHead checks the parking itself: jobs behind a
// head that waits an hour are parked with it and left out of the walk, and
// come back when the head goes, is woken, or is due.
func TestParkingFollowsTheKeysHead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q := newQueue(t, db, queue.Options{})
		q.Handle("send", func(context.Context, *queue.Job) error { return nil })
		q.SetWalkOnly()
		later := time.Now().Add(time.Hour)
		got := enqueue(t, db,
			queue.NewJob{Kind: "send", Key: "k", Payload: 1},
			queue.NewJob{Kind: "send", Key: "k", Payload: 2},
			queue.NewJob{Kind: "send", Key: "k", Payload: 3},
			queue.NewJob{Kind: "send", Payload: 4, RunAt: later},
		)
		head, alone := got[0], got[3]
		parked := func() []int64 {
			return ids(t, db, `SELECT id FROM jobs WHERE wait_until IS NOT NULL ORDER BY id`)
		}
		if p := parked(); !reflect.DeepEqual(p, []int64{alone}) {
			t.Fatalf("after enqueue: parked %v, want only the delayed job %d", p, alone)
		}
		jobs, err := q.Claim(ctx, 1)
		if err != nil || len(jobs) != 1 || jobs[0].ID != head {
			t.Fatalf("claimed %v, %v; want the head %d", jobs, err, head)
		}
		// The head fails: it and the rest of its key wait an hour.
		if _, err := q.Retry(ctx, jobs[0], later); err != nil {
			t.Fatal(err)
		}
		if p := parked(); !reflect.DeepEqual(p, []int64{got[0], got[1], got[2], alone}) {
			t.Fatalf("after the head's retry: parked %v, want all four", p)
		}
		// A job enqueued behind the waiting head waits with it.
		late := enqueue(t, db, queue.NewJob{Kind: "send", Key: "k", Payload: 5})[0]
		if p := parked(); len(p) != 5 || p[4] != late {
			t.Fatalf("after a later enqueue: parked %v, want %d too", p, late)
		}
		if jobs, err := q.Claim(ctx, 4); err != nil || len(jobs) != 0 {
			t.Fatalf("claimed %v, %v while everything waits", jobs, err)
		}
		// Woken, the head is due and the rest waits only for it.
		if _, err := q.Wake(ctx, "send", []string{"k"}); err != nil {
			t.Fatal(err)
		}
		jobs, err = q.Claim(ctx, 4)
		if err != nil || len(jobs) != 1 || jobs[0].ID != head {
			t.Fatalf("after Wake claimed %v, %v; want the head %d", jobs, err, head)
		}
		if p := parked(); !reflect.DeepEqual(p, []int64{alone}) {
			t.Fatalf("after Wake: parked %v, want only %d", p, alone)
		}
		if _, err := q.Complete(ctx, jobs[0]); err != nil {
			t.Fatal(err)
		}
		jobs, err = q.Claim(ctx, 4)
		if err != nil || len(jobs) != 1 || jobs[0].ID != got[1] {
			t.Fatalf("after the head: claimed %v, %v; want %d", jobs, err, got[1])
		}
		// The next head snoozes an hour; deleting it by hand (as an
		// absorbing handler may) lets the rest go at once.
		if _, err := q.SnoozeClaimed(ctx, jobs[0], later); err != nil {
			t.Fatal(err)
		}
		if p := parked(); len(p) != 4 {
			t.Fatalf("after a snooze: parked %v, want the key's three and %d", p, alone)
		}
		if err := db.Gorm.Exec(`DELETE FROM jobs WHERE id = ?`, got[1]).Error; err != nil {
			t.Fatal(err)
		}
		if bad := ids(t, db, unsoundWaits); len(bad) > 0 {
			t.Fatalf("after the snoozed head went: %v still wait for it", bad)
		}
		jobs, err = q.Claim(ctx, 4)
		if err != nil || len(jobs) != 1 || jobs[0].ID != got[2] {
			t.Fatalf("after the snoozed head went: claimed %v, %v; want %d", jobs, err, got[2])
		}
	})
}

// TestMigrationParksQueuedJobs takes the parking migration (and the lane
// migration after it) down and up again over a backlog, as an upgrade
// finds it: the delayed jobs, and the jobs behind a delayed head of their
// key, come out parked; the rest not; all in the empty lane.
func TestMigrationParksQueuedJobs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sub, err := fs.Sub(migrations.FS, string(db.Dialect))
		if err != nil {
			t.Fatal(err)
		}
		dialect := goose.DialectPostgres
		if db.Dialect == store.SQLite {
			dialect = goose.DialectSQLite3
		}
		p, err := goose.NewProvider(dialect, db.SQL(), sub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 31); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour)
		got := enqueueAt31(t, db,
			queue.NewJob{Kind: "send", Key: "k", Payload: 0},
			queue.NewJob{Kind: "send", Key: "k", Payload: 1, RunAt: later},
			queue.NewJob{Kind: "send", Key: "k", Payload: 2},
			queue.NewJob{Kind: "send", Key: "other", Payload: 3},
			queue.NewJob{Kind: "send", Payload: 4, RunAt: later},
			queue.NewJob{Kind: "send", Payload: 5},
		)
		if _, err := p.Up(ctx); err != nil {
			t.Fatal(err)
		}
		if p := ids(t, db, `SELECT id FROM jobs WHERE wait_until IS NOT NULL ORDER BY id`); !reflect.DeepEqual(p, []int64{got[1], got[2], got[4]}) {
			t.Errorf("parked after the migration: %v, want %v", p, []int64{got[1], got[2], got[4]})
		}
		if bad := ids(t, db, unsoundWaits); len(bad) > 0 {
			t.Errorf("jobs %v parked longer than their key holds them", bad)
		}
		if l := ids(t, db, `SELECT id FROM jobs WHERE lane <> '' ORDER BY id`); len(l) > 0 {
			t.Errorf("jobs %v in a lane after the migration, want none", l)
		}
	})
}

// enqueueAt31 enqueues jobs into the jobs table as migration 31 left it:
// queue.Enqueue writes columns added since.
func enqueueAt31(t *testing.T, db *store.DB, jobs ...queue.NewJob) []int64 {
	t.Helper()
	var out []int64
	for _, j := range jobs {
		now := store.Now()
		// A job due at once is stamped a second back: SQLite's migration
		// compares with its own 'now', in milliseconds, as text, and a
		// time in microseconds of the same millisecond sorts after it (the
		// job came out parked, 1 run in about 30; harmless, as the next
		// claim unparks it, but not what this test looks at).
		runAt := now.Add(-time.Second)
		if !j.RunAt.IsZero() {
			runAt = j.RunAt.UTC().Truncate(time.Microsecond)
		}
		var id int64
		err := db.Gorm.Raw(`INSERT INTO jobs (kind, workspace_id, queue_key, payload, state, attempts,
				max_attempts, run_at, locked_by, last_error, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'pending', 0, 12, ?, '', '', ?, ?) RETURNING id`,
			j.Kind, j.WorkspaceID, j.Key, fmt.Sprint(j.Payload), runAt, now, now).Scan(&id).Error
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// TestConcurrentClaimersParkAndNeverShareAKey has several claimers on
// separate connections work through keyed jobs while parking goes on under
// them: first attempts of some jobs fail and retry a moment later, others
// snooze, each parking the rest of its key. No two jobs of a key may run
// at once, and every job must be done in the end: none stays parked.
func TestConcurrentClaimersParkAndNeverShareAKey(t *testing.T) {
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skip(storetest.EnvURL + " is not set")
	}
	url := storetest.URL(t)
	ctx := context.Background()
	var first *store.DB
	var (
		mu      sync.Mutex
		running = map[string]int64{}
		snoozed = map[int64]bool{}
		done    = map[int64]int{}
		errs    []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	const claimers = 4
	qs := make([]*queue.Queue, claimers)
	for i := range claimers {
		db, err := store.Open(ctx, url, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if first == nil {
			first = db
		}
		qs[i] = newQueue(t, db, queue.Options{InstanceID: fmt.Sprintf("c%d", i)})
		qs[i].Handle("send", func(context.Context, *queue.Job) error { return nil })
	}
	jobs := mixedJobs(400)
	for i := range jobs {
		if i%9 == 0 {
			jobs[i].RunAt = time.Now().Add(30 * time.Millisecond)
		}
	}
	ids := enqueue(t, first, jobs...)
	// A bound for a test that would otherwise spin forever on a job that
	// stays parked; the work takes a second or two.
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for _, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				got, err := q.Claim(ctx, 4)
				if err != nil {
					fail("claim: %v", err)
					return
				}
				if len(got) == 0 {
					var left int64
					if err := first.Gorm.Raw(`SELECT COUNT(*) FROM jobs`).Scan(&left).Error; err != nil || left == 0 {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				for _, j := range got {
					if j.Key == "" {
						continue
					}
					if other, busy := running[j.Key]; busy {
						errs = append(errs, fmt.Sprintf("job %d claimed while job %d of key %s runs", j.ID, other, j.Key))
					}
					running[j.Key] = j.ID
				}
				mu.Unlock()
				for _, j := range got {
					mu.Lock()
					delete(running, j.Key)
					snooze := j.ID%5 == 0 && !snoozed[j.ID]
					snoozed[j.ID] = true
					mu.Unlock()
					var err error
					switch {
					case snooze:
						_, err = q.SnoozeClaimed(ctx, j, time.Now().Add(20*time.Millisecond))
					case j.ID%4 == 0 && j.Attempts == 1:
						_, err = q.Retry(ctx, j, time.Now().Add(20*time.Millisecond))
					default:
						_, err = q.Complete(ctx, j)
						mu.Lock()
						done[j.ID]++
						mu.Unlock()
					}
					if err != nil {
						fail("outcome of job %d: %v", j.ID, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	for _, id := range ids {
		if done[id] != 1 {
			t.Errorf("job %d done %d times", id, done[id])
		}
	}
	if n := countJobs(t, first); n != 0 {
		t.Errorf("%d jobs left", n)
	}
}

// TestSettleBoundsAParkByItsKeysHead stands in for the crossing settle is
// for (an enqueue parking behind a head that another transaction wakes at
// the same moment): a job parked far beyond its key's head is brought back
// to wait for the head only, and a job parked rightly is left alone.
func TestSettleBoundsAParkByItsKeysHead(t *testing.T) {
	db := storetest.Postgres(t)
	ctx := context.Background()
	q := newQueue(t, db, queue.Options{})
	q.Handle("send", func(context.Context, *queue.Job) error { return nil })
	q.SetWalkOnly()
	later := time.Now().Add(time.Hour)
	got := enqueue(t, db,
		queue.NewJob{Kind: "send", Key: "k", Payload: 1},
		queue.NewJob{Kind: "send", Key: "k", Payload: 2},
		queue.NewJob{Kind: "send", Key: "held", Payload: 3, RunAt: later},
		queue.NewJob{Kind: "send", Key: "held", Payload: 4},
	)
	// The crossing: job 2 waits a day for a head that is due.
	if err := db.Gorm.Exec(`UPDATE jobs SET wait_until = ? WHERE id = ?`, time.Now().Add(24*time.Hour), got[1]).Error; err != nil {
		t.Fatal(err)
	}
	if bad := ids(t, db, unsoundWaits); !reflect.DeepEqual(bad, []int64{got[1]}) {
		t.Fatalf("before settling: unsound %v, want %d", bad, got[1])
	}
	n, err := q.Settle(ctx)
	if err != nil || n != 1 {
		t.Fatalf("settled %d jobs, %v; want 1", n, err)
	}
	if bad := ids(t, db, unsoundWaits); len(bad) > 0 {
		t.Fatalf("after settling: %v still parked too long", bad)
	}
	if p := ids(t, db, `SELECT id FROM jobs WHERE wait_until IS NOT NULL ORDER BY id`); !reflect.DeepEqual(p, []int64{got[1], got[2], got[3]}) {
		t.Fatalf("after settling: parked %v, want %d (until the next claim) and the held key", p, got[1])
	}
	jobs, err := q.Claim(ctx, 4)
	if err != nil || len(jobs) != 1 || jobs[0].ID != got[0] {
		t.Fatalf("claimed %v, %v; want the head %d", jobs, err, got[0])
	}
	if _, err := q.Complete(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	jobs, err = q.Claim(ctx, 4)
	if err != nil || len(jobs) != 1 || jobs[0].ID != got[1] {
		t.Fatalf("claimed %v, %v; want %d", jobs, err, got[1])
	}
}
