package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// newQueue returns a queue with test-sized timings.
func newQueue(t testing.TB, db *store.DB, opts queue.Options) *queue.Queue {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = 10 * time.Millisecond
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return queue.New(db, opts)
}

// start starts q and stops it when the test ends.
func start(t testing.TB, q *queue.Queue) {
	t.Helper()
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Stop(ctx)
	})
}

// enqueue commits jobs in one transaction and returns their ids.
func enqueue(t testing.TB, db *store.DB, jobs ...queue.NewJob) []int64 {
	t.Helper()
	var ids []int64
	err := db.Gorm.Transaction(func(tx *gorm.DB) error {
		for _, j := range jobs {
			id, err := queue.Enqueue(tx, j)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	// A guard against hangs, not a measure of speed: on a loaded 2-core
	// machine 300 jobs under -race have taken over 15 s.
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting on channel")
		panic("unreachable")
	}
}

type row struct {
	State     string
	Attempts  int
	LastError string
}

// jobRow reads a job's row; ok is false once the job is gone (done).
func jobRow(t testing.TB, db *store.DB, id int64) (r row, ok bool) {
	t.Helper()
	var rows []row
	err := db.Gorm.Raw(`SELECT state, attempts, last_error FROM jobs WHERE id = ?`, id).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return row{}, false
	}
	return rows[0], true
}

func countJobs(t testing.TB, db *store.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Gorm.Raw(`SELECT COUNT(*) FROM jobs`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

type greeting struct {
	Name string `json:"name"`
}

func TestEnqueueFollowsTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{})
		ran := make(chan string, 10)
		q.Handle("greet", func(ctx context.Context, j *queue.Job) error {
			var g greeting
			if err := j.Decode(&g); err != nil {
				return err
			}
			ran <- g.Name
			return nil
		})

		errRollback := errors.New("business write failed")
		err := db.Gorm.Transaction(func(tx *gorm.DB) error {
			if _, err := queue.Enqueue(tx, queue.NewJob{Kind: "greet", Payload: greeting{"lost"}}); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("transaction: %v", err)
		}
		if n := countJobs(t, db); n != 0 {
			t.Fatalf("%d jobs after rollback, want 0", n)
		}

		ids := enqueue(t, db, queue.NewJob{Kind: "greet", Payload: greeting{"kept"}})
		start(t, q)
		q.Notify()
		if got := recv(t, ran); got != "kept" {
			t.Fatalf("ran %q, want kept", got)
		}
		waitFor(t, "job deleted", func() bool { _, ok := jobRow(t, db, ids[0]); return !ok })
		select {
		case got := <-ran:
			t.Fatalf("rolled-back or done job ran again: %q", got)
		default:
		}
	})
}

func TestPayloadRoundTrip(t *testing.T) {
	type payload struct {
		Text   string            `json:"text"`
		Big    int64             `json:"big"`
		Tags   []string          `json:"tags"`
		Meta   map[string]string `json:"meta"`
		Nested *payload          `json:"nested,omitempty"`
	}
	want := payload{
		Text: "Привет 👋 \"quoted\" \\ <b>&</b>", Big: 1<<62 + 1, Tags: []string{"a", "b"},
		Meta: map[string]string{"k": "v"}, Nested: &payload{Text: "inner"},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{})
		got := make(chan queue.Job, 1)
		q.Handle("echo", func(ctx context.Context, j *queue.Job) error {
			got <- *j
			return nil
		})
		runAt := store.Now().Add(-time.Minute)
		ids := enqueue(t, db, queue.NewJob{Kind: "echo", WorkspaceID: "ws1", Key: "send:c1:u1", Payload: want, RunAt: runAt})
		start(t, q)

		j := recv(t, got)
		var p payload
		if err := j.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("payload = %+v, want %+v", p, want)
		}
		if j.ID != ids[0] || j.Kind != "echo" || j.WorkspaceID != "ws1" || j.Key != "send:c1:u1" ||
			j.State != queue.StateRunning || j.Attempts != 1 || j.MaxAttempts != queue.DefaultMaxAttempts {
			t.Errorf("job = %+v", j)
		}
		if !j.RunAt.Equal(runAt) {
			t.Errorf("run_at = %v, want %v", j.RunAt, runAt)
		}
		if j.LockedUntil.Before(time.Now()) || j.LockedBy == "" || j.CreatedAt.IsZero() {
			t.Errorf("lock fields: by %q until %v, created %v", j.LockedBy, j.LockedUntil, j.CreatedAt)
		}
	})
}

func TestRetryWithBackoffThenSuccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const base = 40 * time.Millisecond
		q := newQueue(t, db, queue.Options{BackoffBase: base, BackoffMax: time.Second})
		type call struct {
			at        time.Time
			attempt   int
			lastError string
		}
		calls := make(chan call, 10)
		q.Handle("flaky", func(ctx context.Context, j *queue.Job) error {
			calls <- call{time.Now(), j.Attempts, j.LastError}
			if j.Attempts < 3 {
				return fmt.Errorf("fail %d", j.Attempts)
			}
			return nil
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "flaky"})
		start(t, q)

		c1, c2, c3 := recv(t, calls), recv(t, calls), recv(t, calls)
		if c1.attempt != 1 || c2.attempt != 2 || c3.attempt != 3 {
			t.Fatalf("attempts %d %d %d", c1.attempt, c2.attempt, c3.attempt)
		}
		if c2.lastError != "fail 1" || c3.lastError != "fail 2" {
			t.Errorf("last errors %q %q", c2.lastError, c3.lastError)
		}
		// Backoff doubles per attempt, with at most 25% taken off by jitter.
		if d := c2.at.Sub(c1.at); d < base*3/4 {
			t.Errorf("first retry after %v, want >= %v", d, base*3/4)
		}
		if d := c3.at.Sub(c2.at); d < 2*base*3/4 {
			t.Errorf("second retry after %v, want >= %v", d, 2*base*3/4)
		}
		waitFor(t, "job deleted", func() bool { _, ok := jobRow(t, db, ids[0]); return !ok })
	})
}

func TestDeadAfterMaxAttemptsAndRequeue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{})
		var healed atomic.Bool
		var calls atomic.Int32
		q.Handle("doomed", func(ctx context.Context, j *queue.Job) error {
			calls.Add(1)
			if healed.Load() {
				return nil
			}
			return fmt.Errorf("boom %d", j.Attempts)
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "doomed", WorkspaceID: "ws1", MaxAttempts: 3})
		start(t, q)
		ctx := context.Background()

		waitFor(t, "dead job", func() bool { r, _ := jobRow(t, db, ids[0]); return r.State == queue.StateDead })
		if r, _ := jobRow(t, db, ids[0]); r.Attempts != 3 || r.LastError != "boom 3" {
			t.Errorf("dead row = %+v", r)
		}
		if n := calls.Load(); n != 3 {
			t.Errorf("%d calls, want 3", n)
		}
		stats, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stats[queue.StateDead] != 1 || stats[queue.StatePending] != 0 || stats[queue.StateRunning] != 0 {
			t.Errorf("stats = %v", stats)
		}
		dead, err := q.Dead(ctx, "ws1", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 1 || dead[0].ID != ids[0] || dead[0].LastError != "boom 3" || dead[0].LockedBy != "" {
			t.Errorf("Dead(ws1) = %+v", dead)
		}
		if all, err := q.Dead(ctx, "", 0); err != nil || len(all) != 1 {
			t.Errorf("Dead(all) = %v, %v", all, err)
		}
		if other, err := q.Dead(ctx, "ws2", 10); err != nil || len(other) != 0 {
			t.Errorf("Dead(ws2) = %v, %v", other, err)
		}

		healed.Store(true)
		if err := q.Requeue(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "requeued job done", func() bool { _, ok := jobRow(t, db, ids[0]); return !ok })
		if err := q.Requeue(ctx, ids[0]); !errors.Is(err, queue.ErrNotDead) {
			t.Errorf("requeue of a finished job: %v, want ErrNotDead", err)
		}
	})
}

func TestPermanentDeadLettersAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{})
		var calls atomic.Int32
		q.Handle("send", func(ctx context.Context, j *queue.Job) error {
			calls.Add(1)
			return queue.Permanent(fmt.Errorf("recipient unknown: %w", errors.New("code 131026")))
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "send"})
		start(t, q)
		waitFor(t, "dead job", func() bool { r, _ := jobRow(t, db, ids[0]); return r.State == queue.StateDead })
		r, _ := jobRow(t, db, ids[0])
		if r.Attempts != 1 || r.LastError != "recipient unknown: code 131026" {
			t.Errorf("row = %+v", r)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
	})
}

func TestRetryAfterHonoured(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const wait = 300 * time.Millisecond
		q := newQueue(t, db, queue.Options{}) // backoff 10ms..50ms
		calls := make(chan time.Time, 5)
		q.Handle("throttled", func(ctx context.Context, j *queue.Job) error {
			calls <- time.Now()
			if j.Attempts == 1 {
				return queue.RetryAfter(wait, errors.New("429 rate limited"))
			}
			return nil
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "throttled"})
		start(t, q)
		first, second := recv(t, calls), recv(t, calls)
		if d := second.Sub(first); d < wait {
			t.Errorf("retried after %v, want >= %v", d, wait)
		}
		waitFor(t, "job deleted", func() bool { _, ok := jobRow(t, db, ids[0]); return !ok })
	})
}

func TestFIFOPerKeyAcrossFailure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{Workers: 4})
		var mu sync.Mutex
		var events []string
		otherDone := make(chan struct{})
		q.Handle("send", func(ctx context.Context, j *queue.Job) error {
			var n int
			if err := j.Decode(&n); err != nil {
				return err
			}
			mu.Lock()
			events = append(events, fmt.Sprintf("%s/%d#%d", j.Key, n, j.Attempts))
			mu.Unlock()
			if j.Key == "other" {
				close(otherDone)
			}
			if j.Key == "k" && n == 1 && j.Attempts == 1 {
				return queue.RetryAfter(200*time.Millisecond, errors.New("try later"))
			}
			return nil
		})
		enqueue(t, db,
			queue.NewJob{Kind: "send", Key: "k", Payload: 1},
			queue.NewJob{Kind: "send", Key: "k", Payload: 2},
			queue.NewJob{Kind: "send", Key: "other", Payload: 3},
		)
		start(t, q)
		recv(t, otherDone) // another key is not held up by k's retry
		waitFor(t, "all jobs done", func() bool { return countJobs(t, db) == 0 })

		mu.Lock()
		defer mu.Unlock()
		var k []string
		for _, e := range events {
			if e[0] == 'k' {
				k = append(k, e)
			}
		}
		if want := []string{"k/1#1", "k/1#2", "k/2#1"}; !reflect.DeepEqual(k, want) {
			t.Errorf("key k ran %v, want %v (all events %v)", k, want, events)
		}
	})
}

func TestFIFOPerKeyWaitsForDelayedHead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{Workers: 2})
		order := make(chan int, 2)
		q.Handle("send", func(ctx context.Context, j *queue.Job) error {
			var n int
			j.Decode(&n)
			order <- n
			return nil
		})
		enqueue(t, db,
			queue.NewJob{Kind: "send", Key: "k", Payload: 1, RunAt: time.Now().Add(150 * time.Millisecond)},
			queue.NewJob{Kind: "send", Key: "k", Payload: 2},
		)
		start(t, q)
		if a, b := recv(t, order), recv(t, order); a != 1 || b != 2 {
			t.Errorf("ran %d then %d, want 1 then 2", a, b)
		}
	})
}

func TestFairnessAcrossWorkspaces(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{Workers: 1})
		var mu sync.Mutex
		var order []string
		q.Handle("send", func(ctx context.Context, j *queue.Job) error {
			mu.Lock()
			order = append(order, j.WorkspaceID)
			mu.Unlock()
			return nil
		})
		var jobs []queue.NewJob
		add := func(ws string, n int) {
			for range n {
				jobs = append(jobs, queue.NewJob{Kind: "send", WorkspaceID: ws})
			}
		}
		add("ws-busy", 200)
		add("ws-other", 20)
		add("ws-quiet", 1)
		enqueue(t, db, jobs...)
		start(t, q)
		waitFor(t, "45 runs", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) >= 45 })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Fatal(err)
		}

		mu.Lock()
		defer mu.Unlock()
		first := map[string]int{}
		for i, ws := range order {
			if _, seen := first[ws]; !seen {
				first[ws] = i
			}
		}
		if p := first["ws-quiet"]; p > 2 {
			t.Errorf("ws-quiet's job ran as number %d, want among the first 3", p+1)
		}
		// Taking turns, ws-other's 20 jobs alternate with ws-busy's.
		other := 0
		for _, ws := range order[:42] {
			if ws == "ws-other" {
				other++
			}
		}
		if other != 20 {
			t.Errorf("ws-other ran %d of the first 42 jobs, want all its 20; order %v", other, order[:42])
		}
	})
}

// TestChannelsTakeTurnsWithinAWorkspace: workspace W has channel A with
// 1,000 ready jobs and channel B with one, enqueued after A's; another
// workspace has one job too. B's job is claimed within the first round
// (one turn for each workspace and each of W's channels), walking and
// scanning alike; then A's jobs follow.
func TestChannelsTakeTurnsWithinAWorkspace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var jobs []queue.NewJob
		for i := range 1000 {
			jobs = append(jobs, queue.NewJob{Kind: "send", WorkspaceID: "W", Lane: "A", Payload: i})
		}
		jobs = append(jobs, queue.NewJob{Kind: "send", WorkspaceID: "W", Lane: "B", Payload: "b"},
			queue.NewJob{Kind: "send", WorkspaceID: "V", Lane: "C", Payload: "v"})
		ids := enqueue(t, db, jobs...)
		idB, idV := ids[1000], ids[1001]
		for _, window := range []int{1 << 20, 0} {
			q := newQueue(t, db, queue.Options{InstanceID: fmt.Sprintf("w%d", window)})
			q.Handle("send", func(context.Context, *queue.Job) error { return nil })
			q.SetWindow(window)
			var order []int64
			var claimed []*queue.Job
			// Claims of one job each: a round is three claims.
			for range 3 {
				got, err := q.Claim(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 {
					t.Fatalf("window %d: claimed %d jobs, want 1", window, len(got))
				}
				order = append(order, got[0].ID)
				claimed = append(claimed, got...)
			}
			if !slices.Contains(order, idB) || !slices.Contains(order, idV) || !slices.Contains(order, ids[0]) {
				t.Errorf("window %d: first round claimed %v, want A's first job %d, B's %d and V's %d",
					window, order, ids[0], idB, idV)
			}
			// Put them back for the other window.
			for _, j := range claimed {
				if err := db.Gorm.Exec(`UPDATE jobs SET state = 'pending', attempts = 0, locked_by = '', locked_until = NULL WHERE id = ?`, j.ID).Error; err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// TestChannelsAlternate: two channels of one workspace, each with a
// backlog, are served in turn claim after claim, though each claim ranks
// them afresh: the lane served last goes behind the other one.
func TestChannelsAlternate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var jobs []queue.NewJob
		for i := range 6 {
			jobs = append(jobs, queue.NewJob{Kind: "send", WorkspaceID: "W", Lane: "A", Payload: i})
		}
		for i := range 6 {
			jobs = append(jobs, queue.NewJob{Kind: "send", WorkspaceID: "W", Lane: "B", Payload: i})
		}
		enqueue(t, db, jobs...)
		for _, window := range []int{1 << 20, 0} {
			q := newQueue(t, db, queue.Options{InstanceID: fmt.Sprintf("w%d", window)})
			q.Handle("send", func(context.Context, *queue.Job) error { return nil })
			q.SetWindow(window)
			var lanes []string
			for range 3 {
				got, err := q.Claim(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 {
					t.Fatalf("window %d: claimed %d jobs, want 1", window, len(got))
				}
				lanes = append(lanes, got[0].Lane)
				if _, err := q.Complete(ctx, got[0]); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.Join(lanes, ""); got != "ABA" {
				t.Errorf("window %d: claims served lanes %s, want ABA", window, got)
			}
		}
	})
}

// tally checks that every job runs exactly once and that jobs of a key
// never overlap and run in enqueue order.
type tally struct {
	mu      sync.Mutex
	runs    map[int64]int
	by      map[string]int // instance -> runs
	running map[string]bool
	lastSeq map[string]int
	errs    []string
}

type seqPayload struct {
	Seq int `json:"seq"`
}

func newTally() *tally {
	return &tally{runs: map[int64]int{}, by: map[string]int{}, running: map[string]bool{}, lastSeq: map[string]int{}}
}

func (ta *tally) handler(instance string) queue.Handler {
	return func(ctx context.Context, j *queue.Job) error {
		var p seqPayload
		if err := j.Decode(&p); err != nil {
			return queue.Permanent(err)
		}
		ta.mu.Lock()
		ta.runs[j.ID]++
		ta.by[instance]++
		if j.Key != "" {
			if ta.running[j.Key] {
				ta.errs = append(ta.errs, fmt.Sprintf("job %d: key %s already running", j.ID, j.Key))
			}
			if p.Seq <= ta.lastSeq[j.Key] {
				ta.errs = append(ta.errs, fmt.Sprintf("job %d: key %s seq %d after %d", j.ID, j.Key, p.Seq, ta.lastSeq[j.Key]))
			}
			ta.running[j.Key] = true
			ta.lastSeq[j.Key] = p.Seq
		}
		ta.mu.Unlock()

		time.Sleep(time.Millisecond) // let runs overlap

		ta.mu.Lock()
		if j.Key != "" {
			ta.running[j.Key] = false
		}
		ta.mu.Unlock()
		return nil
	}
}

func (ta *tally) check(t *testing.T, ids []int64) {
	t.Helper()
	ta.mu.Lock()
	defer ta.mu.Unlock()
	for _, e := range ta.errs {
		t.Error(e)
	}
	for _, id := range ids {
		if n := ta.runs[id]; n != 1 {
			t.Errorf("job %d ran %d times", id, n)
		}
	}
	if len(ta.runs) != len(ids) {
		t.Errorf("%d distinct jobs ran, want %d", len(ta.runs), len(ids))
	}
}

// mixedJobs makes n jobs over 4 workspaces, a third of them without a key
// and the rest spread over 10 keys, each key's jobs numbered in order.
func mixedJobs(n int) []queue.NewJob {
	seq := map[string]int{}
	var jobs []queue.NewJob
	for i := range n {
		key := ""
		if i%3 != 0 {
			key = fmt.Sprintf("send:ch:%d", i%10)
		}
		seq[key]++
		jobs = append(jobs, queue.NewJob{
			Kind: "send", WorkspaceID: fmt.Sprintf("ws%d", i%4), Key: key, Payload: seqPayload{seq[key]},
		})
	}
	return jobs
}

func TestConcurrentWorkersRunEachJobOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ta := newTally()
		q := newQueue(t, db, queue.Options{Workers: 8})
		q.Handle("send", ta.handler("q"))
		ids := enqueue(t, db, mixedJobs(300)...)
		start(t, q)
		waitFor(t, "all jobs done", func() bool { return countJobs(t, db) == 0 })
		ta.check(t, ids)
	})
}

func TestTwoInstancesShareTable(t *testing.T) {
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skip(storetest.EnvURL + " is not set")
	}
	url := storetest.URL(t)
	ctx := context.Background()
	open := func() *store.DB {
		db, err := store.Open(ctx, url, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db1, db2 := open(), open()
	ta := newTally()
	q1 := newQueue(t, db1, queue.Options{Workers: 4, InstanceID: "one"})
	q2 := newQueue(t, db2, queue.Options{Workers: 4, InstanceID: "two"})
	q1.Handle("send", ta.handler("one"))
	q2.Handle("send", ta.handler("two"))

	ids := enqueue(t, db1, mixedJobs(400)...)
	start(t, q1)
	start(t, q2)
	waitFor(t, "all jobs done", func() bool { return countJobs(t, db1) == 0 })
	ta.check(t, ids)
	ta.mu.Lock()
	defer ta.mu.Unlock()
	t.Logf("runs per instance: %v", ta.by)
	if ta.by["one"] == 0 || ta.by["two"] == 0 {
		t.Errorf("one instance did all the work: %v", ta.by)
	}
}

func TestLeaseExpiryRecoversCrashedJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// Rows as a crashed instance leaves them: running, lease past.
		ids := enqueue(t, db,
			queue.NewJob{Kind: "send", Key: "k", Payload: 1},
			queue.NewJob{Kind: "send", Key: "k", Payload: 2},
			queue.NewJob{Kind: "send", Payload: 3, MaxAttempts: 1},
		)
		past := store.Now().Add(-time.Second)
		err := db.Gorm.Exec(`UPDATE jobs SET state = 'running', attempts = 1, locked_by = 'ghost', locked_until = ?
			WHERE id IN ?`, past, []int64{ids[0], ids[2]}).Error
		if err != nil {
			t.Fatal(err)
		}

		q := newQueue(t, db, queue.Options{Lease: time.Minute})
		ran := make(chan [2]int, 5)
		q.Handle("send", func(ctx context.Context, j *queue.Job) error {
			var n int
			j.Decode(&n)
			ran <- [2]int{n, j.Attempts}
			return nil
		})
		start(t, q)
		if got := recv(t, ran); got != [2]int{1, 2} {
			t.Errorf("first run %v, want job 1 on attempt 2", got)
		}
		if got := recv(t, ran); got != [2]int{2, 1} {
			t.Errorf("second run %v, want job 2 on attempt 1", got)
		}
		// Its only attempt was spent by the crashed run.
		r, _ := jobRow(t, db, ids[2])
		if r.State != queue.StateDead || r.LastError != "lease of ghost expired" {
			t.Errorf("exhausted job = %+v, want dead with lease error", r)
		}
	})
}

func TestLeaseExpiryRecoversHungHandler(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{Workers: 2, Lease: 300 * time.Millisecond})
		release := make(chan struct{})
		hungCtxErr := make(chan error, 1)
		second := make(chan int, 1)
		q.Handle("send", func(ctx context.Context, j *queue.Job) error {
			if j.Attempts == 1 {
				<-release // ignores ctx, like a handler stuck in a syscall
				// The lease has passed by now; the context's timer may lag
				// the database by a moment on a loaded machine, so wait
				// for it rather than sample Err once.
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
				hungCtxErr <- ctx.Err()
				return nil
			}
			second <- j.Attempts
			return nil
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "send", Key: "k"})
		start(t, q)
		if got := recv(t, second); got != 2 {
			t.Errorf("rerun on attempt %d, want 2", got)
		}
		waitFor(t, "job deleted", func() bool { _, ok := jobRow(t, db, ids[0]); return !ok })
		close(release)
		if err := recv(t, hungCtxErr); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("hung handler's context: %v, want deadline exceeded at lease end", err)
		}
	})
}

func TestStopWaitsForRunningHandler(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{Workers: 1})
		started, release := make(chan struct{}), make(chan struct{})
		q.Handle("slow", func(ctx context.Context, j *queue.Job) error {
			close(started)
			<-release
			return nil
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "slow"}, queue.NewJob{Kind: "slow"})
		start(t, q)
		recv(t, started)

		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stopped <- q.Stop(ctx)
		}()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned %v while a handler was running", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		if err := recv(t, stopped); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if _, ok := jobRow(t, db, ids[0]); ok {
			t.Error("in-flight job not completed by the drain")
		}
		if r, ok := jobRow(t, db, ids[1]); !ok || r.State != queue.StatePending || r.Attempts != 0 {
			t.Errorf("job claimed after Stop: %+v", r)
		}
	})
}

func TestStopGivesUpAtDeadline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{Workers: 1})
		started := make(chan struct{})
		q.Handle("slow", func(ctx context.Context, j *queue.Job) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "slow"})
		start(t, q)
		recv(t, started)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := q.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v, want deadline exceeded", err)
		}
		// The cancelled handler's failure is still recorded as a retry.
		waitFor(t, "job back to pending", func() bool {
			r, _ := jobRow(t, db, ids[0])
			return r.State == queue.StatePending && r.Attempts == 1
		})
	})
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPanicIsRecovered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var logs syncBuffer
		q := newQueue(t, db, queue.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		lastErr := make(chan string, 1)
		q.Handle("fragile", func(ctx context.Context, j *queue.Job) error {
			if j.Attempts == 1 {
				var m map[string]int
				m["boom"]++ // nil map write
			}
			lastErr <- j.LastError
			return nil
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "fragile"})
		start(t, q)
		if got := recv(t, lastErr); got != "handler panic: assignment to entry in nil map" {
			t.Errorf("last_error after panic = %q", got)
		}
		waitFor(t, "job deleted", func() bool { _, ok := jobRow(t, db, ids[0]); return !ok })
		if s := logs.String(); !bytes.Contains([]byte(s), []byte("handler panicked")) || !bytes.Contains([]byte(s), []byte("goroutine ")) {
			t.Errorf("panic and stack not logged:\n%s", s)
		}
	})
}

func TestOnlyHandledKindsAreClaimed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{Workers: 1})
		done := make(chan string, 2)
		for _, kind := range []string{"known", "also-known"} {
			q.Handle(kind, func(ctx context.Context, j *queue.Job) error { done <- j.Kind; return nil })
		}
		ids := enqueue(t, db, queue.NewJob{Kind: "unknown"}, queue.NewJob{Kind: "known"}, queue.NewJob{Kind: "also-known"})
		start(t, q)
		if a, b := recv(t, done), recv(t, done); a != "known" || b != "also-known" {
			t.Errorf("ran %s, %s", a, b)
		}
		if r, ok := jobRow(t, db, ids[0]); !ok || r.State != queue.StatePending || r.Attempts != 0 {
			t.Errorf("job of an unhandled kind = %+v (present %v), want untouched", r, ok)
		}
	})
}

func TestEnqueueRejectsBadJobs(t *testing.T) {
	db := storetest.SQLite(t)
	for _, j := range []queue.NewJob{
		{Kind: ""},
		{Kind: "x", MaxAttempts: -1},
		{Kind: "x", Payload: make(chan int)},
	} {
		if _, err := queue.Enqueue(db.Gorm, j); err == nil {
			t.Errorf("Enqueue(%+v) succeeded", j)
		}
	}
}

func TestLastErrorIsBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{})
		q.Handle("loud", func(ctx context.Context, j *queue.Job) error {
			return queue.Permanent(errors.New(string(bytes.Repeat([]byte("é"), 3000)) + "\x00\xff"))
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "loud"})
		start(t, q)
		waitFor(t, "dead job", func() bool { r, _ := jobRow(t, db, ids[0]); return r.State == queue.StateDead })
		r, _ := jobRow(t, db, ids[0])
		if n := len(r.LastError); n > 2010 || n < 1900 {
			t.Errorf("last_error is %d bytes", n)
		}
	})
}

func TestMetrics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		reg := prometheus.NewRegistry()
		q := newQueue(t, db, queue.Options{Registerer: reg})
		q.Handle("m", func(ctx context.Context, j *queue.Job) error {
			var mode string
			j.Decode(&mode)
			switch {
			case mode == "dead":
				return queue.Permanent(errors.New("no"))
			case mode == "flaky" && j.Attempts == 1:
				return errors.New("once")
			}
			return nil
		})
		enqueue(t, db, queue.NewJob{Kind: "m", Payload: "ok"}, queue.NewJob{Kind: "m", Payload: "dead"},
			queue.NewJob{Kind: "m", Payload: "flaky"})
		start(t, q)
		waitFor(t, "jobs finished", func() bool {
			var n int64
			db.Gorm.Raw(`SELECT COUNT(*) FROM jobs WHERE state <> 'dead'`).Scan(&n)
			return n == 0
		})
		// The last outcome is counted just after its row changes.
		waitFor(t, "metrics", func() bool { return metricValue(t, reg, "switchboard_queue_job_duration_seconds", nil) == 4 })

		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"switchboard_queue_jobs_total", map[string]string{"kind": "m", "result": "done"}, 2},
			{"switchboard_queue_jobs_total", map[string]string{"kind": "m", "result": "retry"}, 1},
			{"switchboard_queue_jobs_total", map[string]string{"kind": "m", "result": "dead"}, 1},
			{"switchboard_queue_retries_total", map[string]string{"kind": "m"}, 1},
			{"switchboard_queue_depth", map[string]string{"state": "dead"}, 1},
			{"switchboard_queue_depth", map[string]string{"state": "pending"}, 0},
		} {
			if got := metricValue(t, reg, c.name, c.labels); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
	})
}

// metricValue sums the matching series of a metric; for a histogram it
// sums the sample counts.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			sum += value(m)
		}
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// A snoozed job is put off without spending attempts: a job that has used
// most of its attempts on failures can be snoozed any number of times and
// still has its last attempts afterwards, and is never dead-lettered for
// waiting. Its row says why it waits.
func TestSnoozeGivesTheAttemptBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{})
		attempts := make(chan int, 20)
		var n atomic.Int32
		// Calls: a failure, three snoozes, a failure, a success.
		q.Handle("held", func(ctx context.Context, j *queue.Job) error {
			i := n.Add(1)
			attempts <- j.Attempts
			switch i {
			case 1:
				return errors.New("first failure")
			case 2:
				// Long enough to read the row in between.
				return queue.Snooze(time.Now().Add(300*time.Millisecond), errors.New("dialog limit reached"))
			case 3, 4:
				return queue.Snooze(time.Now().Add(20*time.Millisecond), errors.New("dialog limit reached"))
			case 5:
				return errors.New("second failure")
			}
			return nil
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "held", MaxAttempts: 3})
		start(t, q)
		got := []int{recv(t, attempts), recv(t, attempts)}
		var snoozed row
		waitFor(t, "snoozed row", func() bool {
			snoozed, _ = jobRow(t, db, ids[0])
			return snoozed.LastError == "dialog limit reached" && snoozed.State == queue.StatePending
		})
		if snoozed.Attempts != 1 {
			t.Errorf("snoozed row = %+v, want 1 attempt (the failure's)", snoozed)
		}
		waitFor(t, "job done", func() bool { r, ok := jobRow(t, db, ids[0]); return !ok || r.State == queue.StateDead })
		if r, ok := jobRow(t, db, ids[0]); ok {
			t.Fatalf("job ended %+v after %d calls, want done", r, n.Load())
		}
		for range 4 {
			got = append(got, recv(t, attempts))
		}
		if want := []int{1, 2, 2, 2, 2, 3}; !reflect.DeepEqual(got, want) {
			t.Errorf("attempts seen by the calls %v, want %v", got, want)
		}
	})
}

// A snoozed job keeps the head of its key: the key's later jobs wait until
// it has run, however long it is put off.
func TestSnoozeKeepsKeyOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{Workers: 4})
		order := make(chan string, 10)
		var first atomic.Bool
		q.Handle("send", func(ctx context.Context, j *queue.Job) error {
			var n int
			if err := j.Decode(&n); err != nil {
				return err
			}
			if j.Key == "k" && n == 1 && !first.Swap(true) {
				order <- "k/1 snoozed"
				return queue.Snooze(time.Now().Add(300*time.Millisecond), errors.New("held"))
			}
			order <- fmt.Sprintf("%s/%d", j.Key, n)
			return nil
		})
		enqueue(t, db,
			queue.NewJob{Kind: "send", Key: "k", Payload: 1},
			queue.NewJob{Kind: "send", Key: "k", Payload: 2},
			queue.NewJob{Kind: "send", Key: "other", Payload: 3},
		)
		start(t, q)
		var got []string
		for range 4 {
			got = append(got, recv(t, order))
		}
		var k []string
		sawOther := false
		for _, e := range got {
			if e[0] == 'k' {
				k = append(k, e)
			}
			if e == "other/3" {
				sawOther = true
			}
		}
		if want := []string{"k/1 snoozed", "k/1", "k/2"}; !reflect.DeepEqual(k, want) || !sawOther {
			t.Errorf("ran %v; key k ran %v, want %v, and other must run too", got, k, want)
		}
		// The other key was not held up by k's snooze.
		if slices.Index(got, "other/3") > slices.Index(got, "k/1") {
			t.Errorf("ran %v: other/3 should run while k/1 is snoozed", got)
		}
	})
}

// Wake makes a snoozed job of the given keys due now; jobs of other keys
// stay put off.
func TestWakeRunsSnoozedJobsNow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := newQueue(t, db, queue.Options{})
		ran := make(chan string, 10)
		q.Handle("send", func(ctx context.Context, j *queue.Job) error {
			ran <- fmt.Sprintf("%s#%d", j.Key, j.Attempts)
			if j.LastError == "" {
				return queue.Snooze(time.Now().Add(time.Hour), errors.New("held"))
			}
			return nil
		})
		ids := enqueue(t, db, queue.NewJob{Kind: "send", Key: "a"}, queue.NewJob{Kind: "send", Key: "b"})
		start(t, q)
		first := []string{recv(t, ran), recv(t, ran)}
		slices.Sort(first)
		if !reflect.DeepEqual(first, []string{"a#1", "b#1"}) {
			t.Fatalf("first runs %v", first)
		}
		waitFor(t, "both snoozed", func() bool {
			a, _ := jobRow(t, db, ids[0])
			b, _ := jobRow(t, db, ids[1])
			return a.State == queue.StatePending && b.State == queue.StatePending
		})
		n, err := q.Wake(context.Background(), "send", []string{"a", "c"})
		if err != nil || n != 1 {
			t.Fatalf("Wake = %d, %v; want 1 job moved", n, err)
		}
		if got := recv(t, ran); got != "a#1" {
			t.Fatalf("after Wake ran %s, want a#1 (the snooze gave its attempt back)", got)
		}
		waitFor(t, "a done", func() bool { _, ok := jobRow(t, db, ids[0]); return !ok })
		if r, ok := jobRow(t, db, ids[1]); !ok || r.State != queue.StatePending {
			t.Fatalf("b was not left snoozed: %+v %v", r, ok)
		}
		select {
		case got := <-ran:
			t.Fatalf("%s ran though only a was woken", got)
		default:
		}
	})
}
