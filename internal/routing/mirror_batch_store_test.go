package routing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// batchDouble is a CRM that takes batches: its first MirrorBatches call
// writes only the first batch and fails, as a portal that broke midway.
type batchDouble struct {
	mu      sync.Mutex
	calls   [][]routing.Batch
	written map[string]int // message id → times written
	each    int
}

func (d *batchDouble) Mirror(ctx context.Context, _ *routing.Delivery, msgs []store.MessageView) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for _, m := range msgs {
		d.each++
		ids = append(ids, m.ID)
	}
	return ids, nil
}

func (d *batchDouble) Status(context.Context, *routing.Delivery, *store.MessageView) error {
	return nil
}

func (d *batchDouble) MirrorBatches(ctx context.Context, _ *store.Integration, batches []routing.Batch) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, batches)
	var sent []string
	for i, b := range batches {
		if len(d.calls) == 1 && i > 0 {
			return sent, errors.New("portal broke midway")
		}
		for _, m := range b.Messages {
			d.written[m.ID]++
		}
		sent = append(sent, b.ID)
	}
	return sent, nil
}

// TestBatchesThroughTheNeutralInterface: routing alone, with a CRM double,
// on both engines. Hourly messages of two channels wait for the flush,
// which closes one batch per binding; a CRM that wrote only one of them
// gets the other again, marked as a retry, and never the written one; none
// mode writes nothing; each mode is left to the each-path.
func TestBatchesThroughTheNeutralInterface(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: "double", ExternalID: "p1", Domain: "p1.example", WorkspaceID: ws.ID,
			Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		var chans []*store.Channel
		for i, mode := range []string{routing.MirrorHourly, routing.MirrorHourly, routing.MirrorNone} {
			ch := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "wa", AccountID: fmt.Sprintf("acc-%d", i)}
			if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
				t.Fatal(err)
			}
			if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: routing.ModeRecord, Mirror: mode}); err != nil {
				t.Fatal(err)
			}
			chans = append(chans, ch)
		}
		double := &batchDouble{written: map[string]int{}}
		r := routing.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		r.Register("double", double)
		q := queue.New(db, queue.Options{Workers: 2, PollInterval: 10 * time.Millisecond, BackoffBase: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
		r.Handle(q)
		r.Notify = q.Notify
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer q.Stop(ctx)

		stored := map[string]bool{}
		for i := 0; i < 9; i++ {
			ch := chans[i%3]
			err := st.Tx(ctx, func(tx *gorm.DB) error {
				c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: fmt.Sprintf("7916000000%d", i%2)}, nil)
				if err != nil {
					return err
				}
				m := &store.Message{WorkspaceID: ws.ID, ChannelID: ch.ID, ContactID: c.ID, Direction: store.Inbound, Type: "text",
					Text: fmt.Sprintf("m%d", i), Status: string(channel.StatusReceived)}
				if _, err := store.InsertMessage(tx, m); err != nil {
					return err
				}
				if i%3 != 2 {
					stored[m.ID] = true
				}
				return r.MessageStored(tx, ch, m)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		res, err := r.Flush(ctx, store.Scope{WorkspaceID: "another"}, in.ID)
		if !errors.Is(err, store.ErrNotFound) || res.Batches != 0 {
			t.Fatalf("another workspace's flush: %+v %v", res, err)
		}
		res, err = r.Flush(ctx, store.Scope{WorkspaceID: ws.ID}, in.ID)
		if err != nil || res.Batches != 2 || res.Messages != 6 {
			t.Fatalf("flush: %+v %v", res, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			double.mu.Lock()
			n := len(double.written)
			double.mu.Unlock()
			if n == len(stored) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("written %d of %d messages", n, len(stored))
			}
			time.Sleep(10 * time.Millisecond)
		}
		double.mu.Lock()
		if len(double.calls) != 2 || len(double.calls[1]) != 1 || !double.calls[1][0].Retry || double.calls[1][0].ID != double.calls[0][1].ID {
			t.Fatalf("calls: first %d batches, then %+v", len(double.calls[0]), double.calls[1:])
		}
		for id, n := range double.written {
			if !stored[id] || n != 1 {
				t.Fatalf("message %s written %d times (hourly: %v)", id, n, stored[id])
			}
		}
		if double.each != 0 {
			t.Fatalf("the each-path wrote %d messages", double.each)
		}
		double.mu.Unlock()
		if res, err := r.Flush(ctx, store.All, in.ID); err != nil || res.Batches != 0 {
			t.Fatalf("second flush: %+v %v", res, err)
		}

		// A message waits in an hourly window, then the binding is switched
		// to each: the window closes empty and the each-path takes it.
		err = st.Tx(ctx, func(tx *gorm.DB) error {
			c, err := store.UpsertContact(tx, chans[0], channel.Customer{ExternalID: "79160000009"}, nil)
			if err != nil {
				return err
			}
			m := &store.Message{WorkspaceID: ws.ID, ChannelID: chans[0].ID, ContactID: c.ID, Direction: store.Inbound, Type: "text",
				Text: "switched", Status: string(channel.StatusReceived)}
			if _, err := store.InsertMessage(tx, m); err != nil {
				return err
			}
			return r.MessageStored(tx, chans[0], m)
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := st.BindingOf(ctx, in.ID, chans[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		b.Mirror = routing.MirrorEach
		if err := st.PutBinding(ctx, b); err != nil {
			t.Fatal(err)
		}
		if res, err := r.Flush(ctx, store.All, in.ID); err != nil || res.Batches != 0 {
			t.Fatalf("flush after the switch: %+v %v", res, err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			double.mu.Lock()
			each, batched := double.each, len(double.calls)
			double.mu.Unlock()
			if each == 1 && batched == 2 {
				break
			}
			if time.Now().After(deadline) || each > 1 || batched > 2 {
				t.Fatalf("after the switch: each-path %d messages, %d batch calls", each, batched)
			}
		}
	})
}

// TestMirrorBatchJobLanes: a window's timer serves the channel whose batch
// queued it, and so does the look Bound queues for a channel bound again:
// each runs in its channel's lane. The send writes the whole integration's
// batches and runs in the empty lane. The queue is not started, so the
// jobs stay to be read.
func TestMirrorBatchJobLanes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: "double", ExternalID: "p1", Domain: "p1.example", WorkspaceID: ws.ID,
			Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		r := routing.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		r.Register("double", &batchDouble{written: map[string]int{}})
		var chans []*store.Channel
		var bindings []*store.ChannelBinding
		for i, mode := range []string{routing.MirrorHourly, routing.MirrorDaily} {
			ch := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "wa", AccountID: fmt.Sprintf("acc-%d", i)}
			if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
				t.Fatal(err)
			}
			b := &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: routing.ModeRecord, Mirror: mode}
			if err := st.PutBinding(ctx, b); err != nil {
				t.Fatal(err)
			}
			chans, bindings = append(chans, ch), append(bindings, b)
			err := st.Tx(ctx, func(tx *gorm.DB) error {
				c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79160000001"}, nil)
				if err != nil {
					return err
				}
				m := &store.Message{WorkspaceID: ws.ID, ChannelID: ch.ID, ContactID: c.ID, Direction: store.Inbound, Type: "text",
					Text: mode, Status: string(channel.StatusReceived)}
				if _, err := store.InsertMessage(tx, m); err != nil {
					return err
				}
				return r.MessageStored(tx, ch, m)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		lanes := func(kind string) []string {
			t.Helper()
			var out []string
			if err := db.Gorm.Raw(`SELECT lane FROM jobs WHERE kind = ? ORDER BY id`, kind).Scan(&out).Error; err != nil {
				t.Fatal(err)
			}
			return out
		}
		if got, want := lanes(routing.JobMirrorWindow), []string{chans[0].ID, chans[1].ID}; !slices.Equal(got, want) {
			t.Fatalf("window timers in lanes %q, want their channels' %q", got, want)
		}
		if err := r.Bound(ctx, bindings[1]); err != nil {
			t.Fatal(err)
		}
		if got, want := lanes(routing.JobMirrorWindow), []string{chans[0].ID, chans[1].ID, chans[1].ID}; !slices.Equal(got, want) {
			t.Fatalf("after Bound, window jobs in lanes %q, want %q", got, want)
		}
		if res, err := r.Flush(ctx, store.All, in.ID); err != nil || res.Batches != 2 {
			t.Fatalf("flush: %+v %v", res, err)
		}
		if got := lanes(routing.JobMirrorSend); !slices.Equal(got, []string{""}) {
			t.Fatalf("send in lanes %q, want the empty one", got)
		}
	})
}
