package routing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// boundChannel makes a store with a WhatsApp channel bound in CRM mode
// (mirror each) to an integration of type typ.
func boundChannel(t *testing.T, db *store.DB, typ string) (*store.Store, *store.Workspace, *store.Channel) {
	t.Helper()
	ctx := context.Background()
	st, ws := storetest.Workspace(t, db)
	in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: typ, ExternalID: "p1", Domain: "p1.example", WorkspaceID: ws.ID,
		Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	ch := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "wa", AccountID: "acc-" + typ}
	if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
		t.Fatal(err)
	}
	if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: routing.ModeRecord}); err != nil {
		t.Fatal(err)
	}
	return st, ws, ch
}

// storeInbound stores a customer's text message as ingest does: message
// and routing in one transaction.
func storeInbound(t *testing.T, st *store.Store, r *routing.Router, ws *store.Workspace, ch *store.Channel, phone, text string) {
	t.Helper()
	err := st.Tx(context.Background(), func(tx *gorm.DB) error {
		c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: phone}, nil)
		if err != nil {
			return err
		}
		m := &store.Message{WorkspaceID: ws.ID, ChannelID: ch.ID, ContactID: c.ID, Direction: store.Inbound, Type: "text",
			Text: text, Status: string(channel.StatusReceived)}
		if _, err := store.InsertMessage(tx, m); err != nil {
			return err
		}
		return r.MessageStored(tx, ch, m)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eachDouble is a CRM taking messages one call at a time; its first call
// writes its messages and then fails, as a portal whose answer was lost.
type eachDouble struct {
	mu      sync.Mutex
	calls   [][]string
	inDoubt []map[string]bool
	written map[string]int
	order   []string // texts as written
}

func (d *eachDouble) Mirror(_ context.Context, dv *routing.Delivery, msgs []store.MessageView) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	doubt := map[string]bool{}
	for _, m := range msgs {
		ids = append(ids, m.ID)
		if dv.InDoubt[m.ID] {
			doubt[m.ID] = true
			if d.written[m.ID] > 0 {
				continue // found in the CRM: not written again
			}
		}
		d.written[m.ID]++
		d.order = append(d.order, m.Text)
	}
	d.calls = append(d.calls, ids)
	d.inDoubt = append(d.inDoubt, doubt)
	if len(d.calls) == 1 {
		return nil, errors.New("answer lost")
	}
	return ids, nil
}

func (d *eachDouble) Status(context.Context, *routing.Delivery, *store.MessageView) error { return nil }

// TestMirrorEachTakesTheJobsBehindIt: 120 customer messages queued while
// no worker runs become a handful of Mirror calls (the running job takes
// the messages of the jobs queued behind it and ends those jobs), far
// fewer handler runs than messages, every message written once and each
// customer's in order. The first call's answer is lost after it wrote:
// the next call is told exactly those messages are in doubt, and the
// attempt marks are gone once they are recorded as mirrored.
func TestMirrorEachTakesTheJobsBehindIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws, ch := boundChannel(t, db, "double")
		double := &eachDouble{written: map[string]int{}}
		r := routing.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		r.Register("double", double)
		r.Batch = true
		var stepsMu sync.Mutex
		steps := map[string]int{}
		r.TimeMirror = func(step string, took time.Duration) {
			stepsMu.Lock()
			defer stepsMu.Unlock()
			if took < 0 {
				t.Errorf("step %s took %s", step, took)
			}
			steps[step]++
		}

		const n, customers = 120, 4
		for i := 0; i < n; i++ {
			storeInbound(t, st, r, ws, ch, fmt.Sprintf("7916000000%d", i%customers), fmt.Sprintf("c%d-%03d", i%customers, i))
		}
		reg := prometheus.NewRegistry()
		q := queue.New(db, queue.Options{Workers: 2, PollInterval: 10 * time.Millisecond, BackoffBase: 10 * time.Millisecond,
			BackoffMax: 20 * time.Millisecond, Registerer: reg})
		r.Handle(q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer q.Stop(ctx)
		deadline := time.Now().Add(30 * time.Second)
		for {
			var left int64
			if err := db.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = ?", routing.JobMirror).Scan(&left).Error; err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d mirror jobs left", left)
			}
			time.Sleep(20 * time.Millisecond)
		}
		double.mu.Lock()
		defer double.mu.Unlock()
		if len(double.written) != n {
			t.Fatalf("%d messages written, want %d", len(double.written), n)
		}
		for id, k := range double.written {
			if k != 1 {
				t.Fatalf("message %s written %d times", id, k)
			}
		}
		last := map[byte]string{}
		for _, text := range double.order {
			if text <= last[text[1]] {
				t.Fatalf("customer %c's messages out of order: %q after %q", text[1], text, last[text[1]])
			}
			last[text[1]] = text
		}
		// 120 messages at 50 a call, one call again after the lost answer.
		if len(double.calls) > 5 {
			t.Fatalf("%d Mirror calls for %d messages", len(double.calls), n)
		}
		done := counter(t, reg, routing.JobMirror, "done") + counter(t, reg, routing.JobMirror, "retry")
		if done > 10 {
			t.Fatalf("%v handler runs for %d messages: the jobs behind a run were not taken with it", done, n)
		}
		// The second call is told the first call's messages are in doubt, and no others.
		if len(double.inDoubt[0]) != 0 || len(double.inDoubt[1]) != len(double.calls[0]) {
			t.Fatalf("in doubt: first call %d, second %d; first call had %d", len(double.inDoubt[0]), len(double.inDoubt[1]), len(double.calls[0]))
		}
		for _, id := range double.calls[0] {
			if !double.inDoubt[1][id] {
				t.Fatalf("message %s of the lost call not in doubt on the next", id)
			}
		}
		// The chunk marked while the lost call was in flight was never
		// sent: its marks went with the run, so no later call doubts it.
		for i, doubt := range double.inDoubt[2:] {
			if len(doubt) != 0 {
				t.Fatalf("call %d told %d messages are in doubt; only the lost call's were", i+2, len(doubt))
			}
		}
		// Each run's steps are timed: one mark and one CRM step per call,
		// one plan and one read per run, a record per run that wrote.
		stepsMu.Lock()
		defer stepsMu.Unlock()
		if steps[routing.MirrorStepMark] != len(double.calls) || steps[routing.MirrorStepCRM] != len(double.calls) {
			t.Fatalf("steps timed %v for %d Mirror calls", steps, len(double.calls))
		}
		if steps[routing.MirrorStepPlan] == 0 || steps[routing.MirrorStepRead] != steps[routing.MirrorStepPlan] ||
			steps[routing.MirrorStepRecord] == 0 || steps[routing.MirrorStepRecord] > steps[routing.MirrorStepPlan] {
			t.Fatalf("steps timed %v", steps)
		}
		var marks int64
		if err := db.Gorm.Raw("SELECT COUNT(*) FROM crm_links WHERE kind = ?", routing.LinkMirrorAttempt).Scan(&marks).Error; err != nil {
			t.Fatal(err)
		}
		if marks != 0 {
			t.Fatalf("%d attempt marks left after everything was mirrored", marks)
		}
	})
}

// counter reads the queue's handler runs of kind with result.
func counter(t *testing.T, reg *prometheus.Registry, kind, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "switchboard_queue_jobs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// downDouble is a CRM that does not answer: every call fails as a refused
// connection does.
type downDouble struct{ calls atomic.Int32 }

func (d *downDouble) Mirror(context.Context, *routing.Delivery, []store.MessageView) ([]string, error) {
	d.calls.Add(1)
	return nil, fmt.Errorf("%w: dial tcp 127.0.0.1:1: connect: connection refused", routing.ErrUnavailable)
}

func (d *downDouble) Status(context.Context, *routing.Delivery, *store.MessageView) error { return nil }

// TestMirrorWaitsOutAnUnansweringCRM: a mirror job whose CRM does not
// answer is put off, not failed: its attempts stay unspent (an outage of
// any length never dead-letters it) and it is due again within
// unavailableRetryMax (so the backlog drains soon after the CRM returns).
func TestMirrorWaitsOutAnUnansweringCRM(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws, ch := boundChannel(t, db, "down")
		r := routing.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		down := &downDouble{}
		r.Register("down", down)
		storeInbound(t, st, r, ws, ch, "79160000001", "hello")
		// Queued "an hour ago": the pause is at its longest.
		if err := db.Gorm.Exec(`UPDATE jobs SET created_at = ? WHERE kind = ?`, time.Now().Add(-time.Hour).UTC(), routing.JobMirror).Error; err != nil {
			t.Fatal(err)
		}
		q := queue.New(db, queue.Options{Workers: 1, PollInterval: 10 * time.Millisecond})
		r.Handle(q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		var job struct {
			State    string
			Attempts int
			RunAt    time.Time
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := db.Gorm.Raw(`SELECT state, attempts, run_at FROM jobs WHERE kind = ?`, routing.JobMirror).Scan(&job).Error
			if err != nil {
				t.Fatal(err)
			}
			if down.calls.Load() > 0 && job.State == queue.StatePending {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the mirror job did not run: %+v", job)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := q.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		wait := time.Until(job.RunAt)
		if job.Attempts != 0 || wait < 20*time.Second || wait > 31*time.Second {
			t.Fatalf("after a CRM that did not answer: attempts %d, due in %s; want 0 and about 30s", job.Attempts, wait.Round(time.Second))
		}
	})
}

// TestWaitingForCRMSnoozesOnlyOutages: the wrapper every CRM job runs in
// puts off a job whose CRM is down (attempt unspent), leaves any other
// error and success alone, and does not snooze a snoozed job again.
func TestWaitingForCRMSnoozesOnlyOutages(t *testing.T) {
	j := &queue.Job{CreatedAt: store.Now().Add(-time.Hour)}
	down := fmt.Errorf("%w: bitrix24: (HTTP 503)", routing.ErrUnavailable)
	bug := errors.New("bitrix24: INTERNAL_SERVER_ERROR (HTTP 500)")
	for _, c := range []struct {
		err     error
		snoozed bool
	}{{down, true}, {bug, false}, {nil, false}, {queue.Snooze(store.Now().Add(time.Minute), down), true}} {
		got := routing.WaitingForCRM(func(context.Context, *queue.Job) error { return c.err })(context.Background(), j)
		if queue.Snoozed(got) != c.snoozed || !errors.Is(got, c.err) {
			t.Errorf("WaitingForCRM(%v) = %v; snoozed want %v", c.err, got, c.snoozed)
		}
	}
	// A snoozed job keeps its own time: not wrapped in a second snooze.
	own := queue.Snooze(store.Now().Add(time.Minute), down)
	if got := routing.WaitingForCRM(func(context.Context, *queue.Job) error { return own })(context.Background(), j); got != own {
		t.Errorf("a snooze was wrapped again: %v", got)
	}
}
