package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// randomBacklog makes a backlog that exercises every rule of the claim:
// several workspaces (the empty one too), several lanes in each (the empty
// one too), keys shared by many jobs (across lanes too), jobs without a
// key, delayed jobs, and a kind the queue does not handle.
func randomBacklog(n int) []queue.NewJob {
	r := rand.New(rand.NewPCG(1, 2))
	workspaces := []string{"", "a", "b", "ws-busy", "ws-quiet"}
	lanes := []string{"", "ch-1", "ch-2", "ch-3"}
	later := time.Now().Add(time.Hour)
	var jobs []queue.NewJob
	for range n {
		j := queue.NewJob{Kind: "send", WorkspaceID: workspaces[r.IntN(len(workspaces))], Payload: 0}
		if j.WorkspaceID == "ws-busy" || r.IntN(2) == 0 {
			j.WorkspaceID = "ws-busy"
		}
		j.Lane = lanes[r.IntN(len(lanes))]
		if r.IntN(3) > 0 {
			j.Key = fmt.Sprintf("k%d", r.IntN(25))
		}
		if r.IntN(6) == 0 {
			j.RunAt = later
		}
		if r.IntN(10) == 0 {
			j.Kind = "other"
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// TestWalkClaimsWhatTheScanClaims runs the same backlog through a queue
// that always walks, one whose walks often give up, and one that always
// scans, with the same outcomes for the jobs they claim (some fail once
// and go back to the head of their key), and checks that every claim takes
// the same jobs: the walk is the scan's rule, only cheaper.
func TestWalkClaimsWhatTheScanClaims(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		open := storetest.SQLite
		if db.Dialect == store.Postgres {
			open = storetest.Postgres
		}
		ctx := context.Background()
		windows := []int{1 << 20, 3, 0}
		qs := make([]*queue.Queue, len(windows))
		for i, w := range windows {
			d := db
			if i > 0 {
				d = open(t)
			}
			enqueue(t, d, randomBacklog(400)...)
			qs[i] = newQueue(t, d, queue.Options{InstanceID: fmt.Sprintf("q%d", i)})
			qs[i].Handle("send", func(context.Context, *queue.Job) error { return nil })
			qs[i].SetWindow(w)
		}
		claimed := 0
		for round := 0; ; round++ {
			n := 1 + round%4
			var want []int64
			for i, q := range qs {
				jobs, err := q.Claim(ctx, n)
				if err != nil {
					t.Fatal(err)
				}
				var ids []int64
				for _, j := range jobs {
					ids = append(ids, j.ID)
					var err error
					if j.ID%5 == 0 && j.Attempts == 1 {
						_, err = q.Retry(ctx, j, time.Now().Add(-time.Second))
					} else {
						_, err = q.Complete(ctx, j)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if i == 0 {
					want = ids
				} else if !reflect.DeepEqual(ids, want) {
					t.Fatalf("round %d, claim of %d: window %d claimed %v, window %d claimed %v",
						round, n, windows[i], ids, windows[0], want)
				}
			}
			if len(want) == 0 {
				break
			}
			claimed += len(want)
		}
		// 400 jobs less the delayed and the foreign ones, and those
		// behind a delayed head; about a third runs twice.
		if claimed < 150 {
			t.Errorf("only %d claims compared", claimed)
		}
		t.Logf("%d claims compared", claimed)
	})
}

// TestConcurrentClaimersNeverShareAJob has several claimers on separate
// connections take jobs from one table as fast as they can, half of them
// walking and half scanning, and checks that no job is claimed twice and
// no two jobs of a key are out at once: SKIP LOCKED and the re-check of a
// locked row keep peers apart.
func TestConcurrentClaimersNeverShareAJob(t *testing.T) {
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skip(storetest.EnvURL + " is not set")
	}
	url := storetest.URL(t)
	ctx := context.Background()
	var first *store.DB
	var (
		mu      sync.Mutex
		claims  = map[int64]int{}
		running = map[string]int64{}
		errs    []string
	)
	var wg sync.WaitGroup
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
		if i%2 == 1 {
			qs[i].SetWindow(0)
		}
	}
	ids := enqueue(t, first, mixedJobs(600)...)
	for _, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				jobs, err := q.Claim(ctx, 4)
				if err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
					return
				}
				if len(jobs) == 0 {
					var left int64
					if err := first.Gorm.Raw(`SELECT COUNT(*) FROM jobs`).Scan(&left).Error; err != nil || left == 0 {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				for _, j := range jobs {
					claims[j.ID]++
					if j.Key == "" {
						continue
					}
					if other, busy := running[j.Key]; busy {
						errs = append(errs, fmt.Sprintf("job %d claimed while job %d of key %s runs", j.ID, other, j.Key))
					}
					running[j.Key] = j.ID
				}
				mu.Unlock()
				for _, j := range jobs {
					// Released before the job is gone: until then the key
					// is still taken in the table, so no peer can claim
					// the next job of the key in between.
					mu.Lock()
					delete(running, j.Key)
					mu.Unlock()
					if _, err := q.Complete(ctx, j); err != nil {
						mu.Lock()
						errs = append(errs, err.Error())
						mu.Unlock()
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
		if claims[id] != 1 {
			t.Errorf("job %d claimed %d times", id, claims[id])
		}
	}
	if n := countJobs(t, first); n != 0 {
		t.Errorf("%d jobs left", n)
	}
}

// TestDoneCommitsWorkAndCompletionTogether has a handler write its work (a
// follow-up job) and delete its own job in one transaction with Done: both
// are there or neither. When the lease has been taken over meanwhile, Done
// refuses, the work rolls back, and the job stays with its new owner.
func TestDoneCommitsWorkAndCompletionTogether(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		reg := prometheus.NewRegistry()
		var logs syncBuffer
		q := newQueue(t, db, queue.Options{InstanceID: "me", Registerer: reg,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		stealFirst := true
		var doneErrs []error
		q.Handle("work", func(ctx context.Context, j *queue.Job) error {
			if stealFirst {
				// Another instance took the job over after our lease.
				stealFirst = false
				if err := db.Gorm.Exec(`UPDATE jobs SET locked_by = 'thief' WHERE id = ?`, j.ID).Error; err != nil {
					return err
				}
			}
			return db.Gorm.Transaction(func(tx *gorm.DB) error {
				if _, err := queue.Enqueue(tx, queue.NewJob{Kind: "follow-up", Payload: j.ID}); err != nil {
					return err
				}
				err := queue.Done(tx, j)
				doneErrs = append(doneErrs, err)
				return err
			})
		})
		enqueue(t, db, queue.NewJob{Kind: "work", Payload: 1}, queue.NewJob{Kind: "work", Payload: 2})
		jobs, err := q.Claim(ctx, 2)
		if err != nil || len(jobs) != 2 {
			t.Fatalf("claimed %d jobs, err %v", len(jobs), err)
		}
		for _, j := range jobs {
			q.RunClaimed(ctx, j)
		}
		if len(doneErrs) != 2 || !errors.Is(doneErrs[0], queue.ErrLeaseLost) || doneErrs[1] != nil {
			t.Fatalf("Done returned %v, want ErrLeaseLost then nil", doneErrs)
		}
		var rows []struct {
			ID       int64
			Kind     string
			State    string
			LockedBy string
		}
		if err := db.Gorm.Raw(`SELECT id, kind, state, locked_by FROM jobs ORDER BY id`).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		// The stolen job is still the thief's, its follow-up rolled back;
		// the other job is gone and its follow-up is there.
		if len(rows) != 2 || rows[0].ID != jobs[0].ID || rows[0].State != queue.StateRunning || rows[0].LockedBy != "thief" ||
			rows[1].Kind != "follow-up" {
			t.Errorf("jobs after the runs: %+v", rows)
		}
		if got := metricValue(t, reg, "switchboard_queue_jobs_total", map[string]string{"kind": "work", "result": "done"}); got != 1 {
			t.Errorf("done jobs metric = %v, want 1", got)
		}
		// Only the stolen job's outcome is dropped; the worker does not
		// try to complete the job Done already deleted.
		if n := strings.Count(logs.String(), "outcome dropped"); n != 1 {
			t.Errorf("%d outcomes dropped, want 1:\n%s", n, logs.String())
		}
	})
}

// TestFollowersAndAbsorb: a running job sees the pending jobs of its kind
// and key (not itself, not another key's, not another kind's) and ends
// those it covered in its own transaction; once its lease is lost, Absorb
// refuses and ends none.
func TestFollowersAndAbsorb(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q := newQueue(t, db, queue.Options{InstanceID: "me"})
		q.Handle("mirror", func(context.Context, *queue.Job) error { return nil })
		enqueue(t, db,
			queue.NewJob{Kind: "mirror", Key: "k", Payload: 1},
			queue.NewJob{Kind: "mirror", Key: "k", Payload: 2},
			queue.NewJob{Kind: "other", Key: "k", Payload: 3},
			queue.NewJob{Kind: "mirror", Key: "k2", Payload: 4},
			queue.NewJob{Kind: "mirror", Key: "k", Payload: 5},
		)
		jobs, err := q.Claim(ctx, 1)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claimed %d, err %v", len(jobs), err)
		}
		head := jobs[0]
		fs, err := queue.Followers(ctx, db.Gorm, head, 10)
		if err != nil {
			t.Fatal(err)
		}
		var payloads []string
		for _, f := range fs {
			payloads = append(payloads, string(f.Payload))
		}
		if strings.Join(payloads, ",") != "2,5" {
			t.Fatalf("followers %v, want 2,5", payloads)
		}
		// Lease lost: nothing absorbed.
		if err := db.Gorm.Exec(`UPDATE jobs SET locked_by = 'thief' WHERE id = ?`, head.ID).Error; err != nil {
			t.Fatal(err)
		}
		err = db.Gorm.Transaction(func(tx *gorm.DB) error { return queue.Absorb(tx, head, []int64{fs[0].ID}) })
		if !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("Absorb after the lease was lost: %v", err)
		}
		if n := countJobs(t, db); n != 5 {
			t.Fatalf("%d jobs after a refused absorb, want 5", n)
		}
		if err := db.Gorm.Exec(`UPDATE jobs SET locked_by = 'me' WHERE id = ?`, head.ID).Error; err != nil {
			t.Fatal(err)
		}
		err = db.Gorm.Transaction(func(tx *gorm.DB) error { return queue.Absorb(tx, head, []int64{fs[0].ID}) })
		if err != nil {
			t.Fatal(err)
		}
		if n := countJobs(t, db); n != 4 {
			t.Fatalf("%d jobs after absorbing one, want 4", n)
		}
	})
}
