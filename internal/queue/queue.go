package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/internal/store"
)

// Options tune a Queue; zero values take the defaults in brackets.
type Options struct {
	// Workers bounds the handlers running at once in this instance [4].
	Workers int
	// PollInterval is how often the table is polled when Notify is not
	// called, e.g. for jobs enqueued by another instance or delayed ones [250ms].
	PollInterval time.Duration
	// Lease is how long a claimed job belongs to its worker. A job still
	// running after that is presumed to belong to a crashed instance and is
	// handed out again, so handlers must finish within it [2m].
	Lease time.Duration
	// BackoffBase and BackoffMax bound the exponential retry delay, which
	// gets ±25% jitter so failures against one provider spread out [2s, 1h].
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// InstanceID names this process in jobs.locked_by [hostname-pid-random].
	InstanceID string
	Logger     *slog.Logger
	// Registerer, when set, receives the queue's metrics.
	Registerer prometheus.Registerer
}

// Queue runs the handlers of the jobs in the jobs table.
type Queue struct {
	db      *store.DB
	opts    Options
	log     *slog.Logger
	metrics *metrics // nil without a Registerer

	mu       sync.Mutex
	handlers map[string]Handler // frozen by Start
	started  bool
	stopped  bool

	kinds     []string           // handled kinds, set by Start
	cancel    context.CancelFunc // ends handler contexts, set by Start
	stopping  chan struct{}      // closed by Stop: claim no more
	loopsDone sync.WaitGroup     // poller and reaper
	inflight  sync.WaitGroup     // running handlers
	slots     chan struct{}      // one token per busy worker
	notify    chan struct{}
	cursor    string // workspace served last; only the poller touches it
	// laneCursors holds the lane each workspace served last, for those
	// whose last lane was not the empty one; only the poller touches it.
	laneCursors map[string]string
	window      int  // walkWindow; tests make it small
	walkOnly    bool // no scan after a walk that found nothing; tests only
}

// finishTimeout bounds recording a job's outcome, which is done even while
// stopping, so it cannot use the run's context.
const finishTimeout = 30 * time.Second

// New returns a queue on db; register handlers with Handle, then Start it.
func New(db *store.DB, opts Options) *Queue {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 2 * time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Hour
	}
	if opts.BackoffMax < opts.BackoffBase {
		opts.BackoffMax = opts.BackoffBase
	}
	if opts.InstanceID == "" {
		opts.InstanceID = defaultInstanceID()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	q := &Queue{
		db:       db,
		opts:     opts,
		log:      opts.Logger.With("component", "queue"),
		handlers: make(map[string]Handler),
		stopping: make(chan struct{}),
		slots:    make(chan struct{}, opts.Workers),
		notify:   make(chan struct{}, 1),
		window:   walkWindow,

		laneCursors: make(map[string]string),
	}
	if opts.Registerer != nil {
		q.metrics = newMetrics(q, opts.Registerer)
	}
	return q
}

func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Handle registers the handler of a job kind. Only kinds with a handler are
// claimed, so an instance that does not know a kind yet (during a rolling
// deploy) leaves those jobs to the instances that do. It panics when called
// twice for a kind or after Start, like http.ServeMux on a conflict.
func (q *Queue) Handle(kind string, h Handler) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		panic("queue: Handle called after Start")
	}
	if kind == "" || h == nil {
		panic("queue: Handle needs a kind and a handler")
	}
	if _, dup := q.handlers[kind]; dup {
		panic("queue: second handler for kind " + kind)
	}
	q.handlers[kind] = h
}

// Start recovers jobs whose lease has expired, then starts the poller, the
// reaper and the workers. Cancelling ctx stops them abruptly, cancelling
// running handlers; use Stop for a graceful drain.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return errors.New("queue: already started")
	}
	if len(q.handlers) == 0 {
		return errors.New("queue: start: no handlers registered")
	}
	// Failing here tells the caller at once that the database is unusable,
	// rather than through a log line per poll.
	if _, err := q.reap(ctx); err != nil {
		return fmt.Errorf("queue: start: %w", err)
	}
	q.started = true
	q.kinds = slices.Sorted(maps.Keys(q.handlers))
	runCtx, cancel := context.WithCancel(ctx)
	q.cancel = cancel
	q.loopsDone.Add(2)
	go q.pollLoop(runCtx)
	go q.reapLoop(runCtx)
	return nil
}

// Notify wakes this instance's poller; call it after committing a
// transaction that enqueued jobs. Other instances find them by polling.
func (q *Queue) Notify() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// Stop stops claiming jobs and waits for running handlers until ctx is done.
// Then it cancels the handlers still running and returns ctx's error; their
// jobs stay claimed until the lease expires and another worker runs them.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	if !q.started {
		q.mu.Unlock()
		return nil
	}
	if !q.stopped {
		q.stopped = true
		close(q.stopping)
	}
	q.mu.Unlock()

	done := make(chan struct{})
	go func() {
		q.loopsDone.Wait()
		q.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		return fmt.Errorf("queue: stop: %w", ctx.Err())
	}
}

func (q *Queue) pollLoop(ctx context.Context) {
	defer q.loopsDone.Done()
	timer := time.NewTimer(q.opts.PollInterval)
	defer timer.Stop()
	for {
		// Claim only for idle workers: a claimed job waiting for a worker
		// would hold its key and its lease for nothing.
		select {
		case q.slots <- struct{}{}:
		case <-q.stopping:
			return
		case <-ctx.Done():
			return
		}
		// select picks at random among ready cases: a slot freed by a
		// finishing handler must not win over Stop.
		select {
		case <-q.stopping:
			<-q.slots
			return
		default:
		}
		n := 1
	fill:
		for n < q.opts.Workers {
			select {
			case q.slots <- struct{}{}:
				n++
			default:
				break fill
			}
		}

		jobs, err := q.claim(ctx, n)
		for range n - len(jobs) {
			<-q.slots
		}
		for _, j := range jobs {
			q.inflight.Add(1)
			go q.run(ctx, j)
		}
		if err != nil && ctx.Err() == nil {
			q.log.Error("queue: claim failed", "err", err)
		}
		if err == nil && len(jobs) == n {
			continue // a full batch: more may be ready
		}

		timer.Reset(q.opts.PollInterval)
		select {
		case <-timer.C:
		case <-q.notify:
		case <-q.stopping:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (q *Queue) reapLoop(ctx context.Context) {
	defer q.loopsDone.Done()
	// Expired leases are rare (a crash), so checking a few times per lease
	// is plenty, yet keeps a crashed instance's keys blocked only briefly.
	every := min(max(q.opts.Lease/4, 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-t.C:
		case <-q.stopping:
			return
		case <-ctx.Done():
			return
		}
		n, err := q.reap(ctx)
		if err != nil && ctx.Err() == nil {
			q.log.Error("queue: reap failed", "err", err)
		}
		if tick%settleEvery == 0 {
			settled, err := q.settle(ctx)
			if err != nil && ctx.Err() == nil {
				q.log.Error("queue: settle failed", "err", err)
			}
			if settled > 0 {
				q.log.Warn("queue: parked jobs settled", "jobs", settled)
				n++
			}
		}
		if n > 0 {
			q.Notify()
		}
	}
}

func (q *Queue) run(ctx context.Context, j *Job) {
	defer q.inflight.Done()
	defer func() {
		<-q.slots
		// The job's key may have a successor that is now its head.
		q.Notify()
	}()

	hctx, cancel := context.WithDeadline(ctx, j.LockedUntil)
	start := time.Now()
	err := q.call(hctx, q.handlers[j.Kind], j)
	took := time.Since(start)
	cancel()

	// Record the outcome even when the queue is being stopped: that is
	// cheaper than waiting for the lease to expire.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer fcancel()
	q.finish(fctx, j, err, took)
}

func (q *Queue) call(ctx context.Context, h Handler, j *Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("queue: handler panicked", "kind", j.Kind, "job", j.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h(ctx, j)
}

func (q *Queue) finish(ctx context.Context, j *Job, herr error, took time.Duration) {
	var (
		result string
		owned  bool
		err    error
	)
	log := q.log.With("kind", j.Kind, "job", j.ID, "workspace", j.WorkspaceID, "attempt", j.Attempts)
	var perm *permanentError
	var sn *snoozeError
	switch {
	case herr == nil && j.done:
		// Deleted by Done in the handler's transaction.
		result, owned = "done", true
	case herr == nil:
		result = "done"
		owned, err = q.complete(ctx, j)
	case errors.As(herr, &sn):
		// Checked before MaxAttempts: a snooze is not a failure, so it
		// must not dead-letter a job that has used its attempts on errors.
		result = "snoozed"
		msg := errorText(herr)
		owned, err = q.snooze(ctx, j, sn.until, msg)
		log.Debug("queue: job snoozed", "reason", msg, "until", sn.until)
	case errors.As(herr, &perm) || j.Attempts >= j.MaxAttempts:
		result = "dead"
		msg := errorText(herr)
		owned, err = q.bury(ctx, j, msg)
		log.Warn("queue: job dead-lettered", "err", msg)
	default:
		result = "retry"
		msg := errorText(herr)
		delay := q.backoff(j.Attempts)
		var ra *retryAfterError
		if errors.As(herr, &ra) && ra.after > delay {
			delay = ra.after
		}
		owned, err = q.retry(ctx, j, store.Now().Add(delay), msg)
		log.Info("queue: job failed, will retry", "err", msg, "in", delay)
	}
	if err != nil {
		log.Error("queue: record job outcome", "result", result, "err", err)
	} else if !owned {
		// The lease ran out and the job was handed out again; the other
		// run's outcome is the one that counts.
		log.Warn("queue: job outcome dropped: lease lost", "result", result)
	}
	q.metrics.observe(j.Kind, result, took)
}

// backoff returns the delay before the retry that follows the given number
// of attempts.
func (q *Queue) backoff(attempts int) time.Duration {
	d := q.opts.BackoffBase
	for i := 1; i < attempts && d < q.opts.BackoffMax; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.75 + 0.5*mrand.Float64()))
	return min(d, q.opts.BackoffMax)
}

// errorText makes a handler error fit for last_error: bounded, and valid
// text for PostgreSQL, which rejects NUL bytes and invalid UTF-8.
func errorText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
