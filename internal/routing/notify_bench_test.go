package routing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// benchEngine is a database engine a benchmark runs on.
type benchEngine struct {
	name string
	open func(testing.TB) *store.DB
}

// benchEngines are SQLite, and PostgreSQL when TEST_DATABASE_URL is set.
func benchEngines() []benchEngine {
	es := []benchEngine{{"sqlite", storetest.SQLite}}
	if os.Getenv(storetest.EnvURL) != "" {
		es = append(es, benchEngine{"postgres", storetest.Postgres})
	}
	return es
}

// opTB is a testing.TB whose cleanups run when one benchmark op ends
// (end) rather than when the benchmark does, so each op's database is
// closed (its PostgreSQL schema dropped) before the next op opens its own.
type opTB struct {
	testing.TB
	cleanups []func()
}

func (o *opTB) Cleanup(f func()) { o.cleanups = append(o.cleanups, f) }

func (o *opTB) end() {
	for i := len(o.cleanups) - 1; i >= 0; i-- {
		o.cleanups[i]()
	}
}

// dueBurst makes n customers of the fixture's binding write ten minutes
// ago (their timers are all due), every one of them answered since but
// one in waitEvery (0: none answered), and leaves only the escalation
// timers queued, so what runs after is the timers alone. It returns the
// customers left waiting.
func dueBurst(tb testing.TB, f *noticeFixture, n, waitEvery int, prefix string) map[string]bool {
	tb.Helper()
	waiting := map[string]bool{}
	for i := range n {
		ct := f.contact(tb, fmt.Sprintf("%s%05d", prefix, i))
		f.message(tb, ct, store.Inbound, "text", 10*time.Minute)
		if waitEvery > 0 && i%waitEvery != 0 {
			f.message(tb, ct, store.Outbound, "text", 0)
		} else {
			waiting[ct.ID] = true
		}
	}
	if err := f.db.Gorm.Exec(`DELETE FROM jobs WHERE kind <> ?`, JobEscalate).Error; err != nil {
		tb.Fatal(err)
	}
	return waiting
}

// BenchmarkEscalationBurst drains a burst of due escalation timers of one
// binding through a real queue (4 workers): an op is the whole burst, from
// the queue's start to its last timer gone. "all-waiting" tells every
// customer; in "2-in-3-answered" two timers in three have nothing to tell
// and are covered by the runs ahead of them. Metrics per op: handler runs,
// CRM deliveries, customers told, and the time inside the handler (the
// rest of ns/op is the queue's claims and finishes, and the drain poll).
func BenchmarkEscalationBurst(b *testing.B) {
	waits := []struct {
		name  string
		every int
	}{{"all-waiting", 0}, {"2-in-3-answered", 3}}
	for _, e := range benchEngines() {
		for _, n := range []int{200, 1000} {
			for _, w := range waits {
				b.Run(fmt.Sprintf("%s/timers=%d/%s", e.name, n, w.name), func(b *testing.B) {
					var total burstResult
					for range b.N {
						r := escalationBurst(b, e.open, n, w.every)
						total.runs += r.runs
						total.calls += r.calls
						total.told += r.told
						total.inHandler += r.inHandler
					}
					ops := float64(b.N)
					b.ReportMetric(float64(total.runs)/ops, "runs/op")
					b.ReportMetric(float64(total.calls)/ops, "crm-calls/op")
					b.ReportMetric(float64(total.told)/ops, "told/op")
					b.ReportMetric(float64(total.inHandler)/ops, "handler-ns/op")
				})
			}
		}
	}
}

// burstResult is what one burst's drain took.
type burstResult struct {
	runs, calls, told int
	inHandler         time.Duration
}

// escalationBurst is one op of BenchmarkEscalationBurst: a database of
// its own with n due timers made with the benchmark's clock stopped, the
// drain timed, then the check that every waiting customer was told once.
func escalationBurst(b *testing.B, open func(testing.TB) *store.DB, n, waitEvery int) burstResult {
	b.StopTimer()
	op := &opTB{TB: b}
	defer op.end()
	ctx := context.Background()
	db := open(op)
	f := newNoticeFixture(op, db)
	waiting := dueBurst(op, f, n, waitEvery, "7917")
	var runs, inHandler atomic.Int64
	q := queue.New(db, queue.Options{Workers: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	q.Handle(JobEscalate, func(ctx context.Context, j *queue.Job) error {
		start := time.Now()
		defer func() { inHandler.Add(int64(time.Since(start))); runs.Add(1) }()
		return f.r.handleEscalate(ctx, j)
	})
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(sctx); err != nil {
			b.Error(err)
		}
	}
	// Registered after the database's close, so it runs before it: the
	// queue stops before its database closes, also when the op fails.
	op.Cleanup(stop)

	b.StartTimer()
	if err := q.Start(ctx); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var left int64
		if err := db.Gorm.Table("jobs").Where("kind = ?", JobEscalate).Count(&left).Error; err != nil {
			b.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d timers left after 10 minutes", left, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()

	stop() // before reading the fake CRM, which the workers write
	told := map[string]int{}
	for _, x := range f.crm.sent() {
		told[x.Dialog.ContactID]++
	}
	for ct, k := range told {
		if k != 1 || !waiting[ct] {
			b.Fatalf("customer %s told %d times (waiting: %v)", ct, k, waiting[ct])
		}
	}
	if len(told) != len(waiting) {
		b.Fatalf("%d customers told, want the %d waiting", len(told), len(waiting))
	}
	return burstResult{runs: int(runs.Load()), calls: f.crm.calls, told: len(f.crm.sent()), inHandler: time.Duration(inHandler.Load())}
}

// BenchmarkEscalationRun times the steps of one timer run, as
// handleEscalate takes them, with one due dialog listed (a timer firing on
// time) and with MaxNotices (a backlog), out of 2×MaxNotices due. Each
// step's time is a metric; the marks are undone between ops with the
// clock stopped, so every op lists the same dialogs, and the timers stay
// queued.
func BenchmarkEscalationRun(b *testing.B) {
	for _, e := range benchEngines() {
		for _, listed := range []int{1, MaxNotices} {
			b.Run(fmt.Sprintf("%s/listed=%d", e.name, listed), func(b *testing.B) {
				escalationRun(b, e.open(b), listed)
			})
		}
	}
}

func escalationRun(b *testing.B, db *store.DB, listed int) {
	ctx := context.Background()
	f := newNoticeFixture(b, db)
	dueBurst(b, f, 2*MaxNotices, 0, "7918")
	var j jobRow
	if err := db.Gorm.Raw(`SELECT id, kind, queue_key, payload, run_at FROM jobs ORDER BY id LIMIT 1`).Scan(&j).Error; err != nil {
		b.Fatal(err)
	}
	job := &queue.Job{ID: j.ID, Kind: j.Kind, Key: j.QueueKey}
	p := noticeJob{IntegrationID: f.in.ID, ChannelID: f.ch.ID}

	steps := []string{"load", "followers", "list", "recipients", "messages", "notify", "marks", "cover"}
	spent := make([]time.Duration, len(steps))
	var last time.Time
	// lap adds the time since the previous lap to step i.
	lap := func(i int) {
		now := time.Now()
		spent[i] += now.Sub(last)
		last = now
	}
	b.ResetTimer()
	for range b.N {
		last = time.Now()
		w, err := f.r.load(ctx, p)
		if err != nil || w == nil {
			b.Fatal(err)
		}
		lap(0)
		fs, err := queue.Followers(ctx, db.Gorm, job, escalationFollowers)
		if err != nil {
			b.Fatal(err)
		}
		lap(1)
		ds, err := f.st.DialogsToEscalate(ctx, f.in.ID, f.ch.ID, store.Now().Add(-5*time.Minute), listed)
		if err != nil || len(ds) != listed {
			b.Fatalf("%d listed, %v", len(ds), err)
		}
		lap(2)
		if err := f.r.recipients(ctx, w); err != nil {
			b.Fatal(err)
		}
		lap(3)
		ns := make([]Notice, 0, len(ds))
		for i := range ds {
			ns = append(ns, Notice{Kind: NoticeEscalation, UserIDs: w.access, Dialog: &ds[i], Message: f.r.noticeMessage(ctx, &ds[i])})
		}
		lap(4)
		if err := w.notifier.Notify(ctx, &Delivery{Integration: w.in, Binding: w.binding, Channel: w.channel}, ns); err != nil {
			b.Fatal(err)
		}
		lap(5)
		err = f.st.Tx(ctx, func(tx *gorm.DB) error {
			for _, n := range ns {
				if _, err := markEscalated(ctx, f.st.InTx(tx), n.Dialog.ID, *n.Dialog.NotifiedSince); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		lap(6)
		if _, err := coveredTimers(ctx, f.st, p, fs, store.Now(), len(ds) < MaxNotices); err != nil {
			b.Fatal(err)
		}
		lap(7)

		b.StopTimer()
		// Unmarked, so the next op lists the same; the fake CRM forgets
		// what it was told, so it does not grow with b.N.
		if err := db.Gorm.Exec(`UPDATE dialogs SET escalated_since = NULL, escalated_at = NULL`).Error; err != nil {
			b.Fatal(err)
		}
		f.crm.mu.Lock()
		f.crm.notices = nil
		f.crm.mu.Unlock()
		b.StartTimer()
	}
	for i, s := range steps {
		b.ReportMetric(float64(spent[i])/float64(b.N), s+"-ns/op")
	}
}
