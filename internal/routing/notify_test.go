package routing

import (
	"context"
	"encoding/json"
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
	"github.com/switchboard/switchboard/internal/queue/queuetest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// fakeCRM is a CRM that records the notices it is given.
type fakeCRM struct {
	mu      sync.Mutex
	notices []Notice
	calls   int
	fail    error
}

func (f *fakeCRM) Mirror(context.Context, *Delivery, []store.MessageView) ([]string, error) {
	return nil, nil
}
func (f *fakeCRM) Status(context.Context, *Delivery, *store.MessageView) error { return nil }
func (f *fakeCRM) Notify(_ context.Context, _ *Delivery, ns []Notice) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.calls++
	f.notices = append(f.notices, ns...)
	return nil
}

func (f *fakeCRM) sent() []Notice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.notices)
}

// noticeFixture is a channel bound in CRM mode to one integration whose
// installing user is "1", with users 3, 5, 7 active and 9 deactivated.
type noticeFixture struct {
	db  *store.DB
	st  *store.Store
	r   *Router
	crm *fakeCRM
	ws  string
	ch  *store.Channel
	in  *store.Integration
	b   *store.ChannelBinding
}

func newNoticeFixture(t testing.TB, db *store.DB) *noticeFixture {
	t.Helper()
	ctx := context.Background()
	st, ws := storetest.Workspace(t, db)
	ch := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "Продажи", AccountID: "acc-1"}
	if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
		t.Fatal(err)
	}
	in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: "fake", ExternalID: "m-1", Domain: "crm.example", InstalledBy: "1", WorkspaceID: ws.ID})
	if err != nil {
		t.Fatal(err)
	}
	b := &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: "crm"}
	if err := st.PutBinding(ctx, b); err != nil {
		t.Fatal(err)
	}
	err = st.ReplaceCRMUsers(ctx, in.ID, []store.CRMUser{{UserID: "1", Active: true}, {UserID: "3", Active: true},
		{UserID: "5", Active: true}, {UserID: "7", Active: true}, {UserID: "9", Active: false}})
	if err != nil {
		t.Fatal(err)
	}
	f := &noticeFixture{db: db, st: st, crm: &fakeCRM{}, ws: ws.ID, ch: ch, in: in, b: b}
	f.r = New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.r.Register("fake", f.crm)
	f.access(t, "5", "7", "9")
	return f
}

// access gives these users read access to the channel, and nobody else.
func (f *noticeFixture) access(t testing.TB, users ...string) {
	t.Helper()
	var rows []store.ChannelAccess
	for _, u := range users {
		rows = append(rows, store.ChannelAccess{UserID: u, ChannelID: f.ch.ID, Level: store.AccessRead})
	}
	if err := f.st.ReplaceAccess(context.Background(), f.in.ID, rows); err != nil {
		t.Fatal(err)
	}
}

// policy sets the binding's owner group (none without users).
func (f *noticeFixture) policy(t *testing.T, group ...string) {
	t.Helper()
	p := BindingPolicy{}
	if len(group) > 0 {
		p.Owner = &OwnerPolicy{Strategy: StrategyFirstResponder}
		for _, u := range group {
			p.Owner.Users = append(p.Owner.Users, WeightedUser{UserID: u})
		}
	}
	p.Apply(f.b)
	if err := f.st.PutBinding(context.Background(), f.b); err != nil {
		t.Fatal(err)
	}
}

func (f *noticeFixture) contact(t testing.TB, phone string) *store.Contact {
	t.Helper()
	ct, err := store.UpsertContact(f.db.Gorm, f.ch, channel.Customer{ExternalID: phone, Phone: "+" + phone, Name: "Анна"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// message stores a message of the contact as the ingest path does and
// runs the routing hook in its transaction; ago backdates it.
func (f *noticeFixture) message(t testing.TB, ct *store.Contact, dir, typ string, ago time.Duration) *store.Message {
	t.Helper()
	m := &store.Message{WorkspaceID: f.ws, ChannelID: f.ch.ID, ContactID: ct.ID, Direction: dir, Type: typ, Text: "Где мой заказ?", Status: "received"}
	err := f.st.Tx(context.Background(), func(tx *gorm.DB) error {
		if _, err := store.InsertMessage(tx, m); err != nil {
			return err
		}
		m.CreatedAt = m.CreatedAt.Add(-ago)
		return f.r.MessageStored(tx, f.ch, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *noticeFixture) dialog(t *testing.T, ct *store.Contact) *store.DialogView {
	t.Helper()
	d, err := f.st.FindDialog(context.Background(), store.DialogKey{IntegrationID: f.in.ID, ChannelID: f.ch.ID, ContactID: ct.ID})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type jobRow struct {
	ID       int64
	Kind     string
	QueueKey string
	Lane     string
	Payload  string
	RunAt    time.Time
}

// jobs lists the queued notice jobs of a dialog, oldest first.
func (f *noticeFixture) jobs(t *testing.T, dialogID string) []jobRow {
	t.Helper()
	var rows []jobRow
	err := f.db.Gorm.Raw(`SELECT id, kind, queue_key, lane, payload, run_at FROM jobs WHERE kind IN ? ORDER BY id`,
		[]string{JobNotify, JobEscalate}).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	var out []jobRow
	for _, r := range rows {
		var p noticeJob
		if err := json.Unmarshal([]byte(r.Payload), &p); err != nil {
			t.Fatal(err)
		}
		if p.DialogID == dialogID {
			out = append(out, r)
		}
	}
	return out
}

// run calls the handler of a queued job as a worker would.
func (f *noticeFixture) run(j jobRow) error {
	// Held as a worker holds it, so a handler can end it with Done.
	res := f.db.Gorm.Exec(`UPDATE jobs SET state = 'running', locked_by = 'fixture', attempts = 1 WHERE id = ?`, j.ID)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return nil // ended by the run of a job ahead of it (queue.Absorb)
	}
	job := &queue.Job{ID: j.ID, Kind: j.Kind, Key: j.QueueKey, Payload: json.RawMessage(j.Payload), LockedBy: "fixture", Attempts: 1}
	if j.Kind == JobEscalate {
		return f.r.handleEscalate(context.Background(), job)
	}
	return f.r.handleNotify(context.Background(), job)
}

func kinds(js []jobRow) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.Kind)
	}
	return out
}

// The first unanswered message arms one notice and one timer, due the
// integration's delay after it; the rest of the period arms nothing, and
// a reaction does not make anyone wait.
func TestNoticesArmOncePerWaitingPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newNoticeFixture(t, db)
		ct := f.contact(t, "79160000001")
		f.message(t, ct, store.Inbound, string(channel.MsgReaction), 0)
		d := f.dialog(t, ct)
		if js := f.jobs(t, d.ID); len(js) != 0 {
			t.Fatalf("a reaction armed %v", kinds(js))
		}
		first := f.message(t, ct, store.Inbound, "text", 0)
		f.message(t, ct, store.Inbound, "text", 0)
		d = f.dialog(t, ct)
		js := f.jobs(t, d.ID)
		if !slices.Equal(kinds(js), []string{JobNotify, JobEscalate}) {
			t.Fatalf("jobs after two messages: %v", kinds(js))
		}
		var p noticeJob
		json.Unmarshal([]byte(js[1].Payload), &p)
		if p != (noticeJob{IntegrationID: f.in.ID, ChannelID: f.ch.ID, DialogID: d.ID}) || d.NotifiedSince == nil || !d.NotifiedSince.Equal(*d.WaitingSince) {
			t.Fatalf("payload %+v, dialog %+v", p, d.Dialog)
		}
		if m, err := f.st.FirstInboundSince(context.Background(), ct.ID, *d.WaitingSince); err != nil || m.ID != first.ID {
			t.Fatalf("the period's first message: %v %v, want %s", m, err, first.ID)
		}
		if want := d.WaitingSince.Add(DefaultNotifyAfterSeconds * time.Second); !js[1].RunAt.Equal(want) || js[1].QueueKey != EscalationKey(f.b.ID) {
			t.Fatalf("timer due %v key %q, want %v %q", js[1].RunAt, js[1].QueueKey, want, EscalationKey(f.b.ID))
		}
		// Behind the binding's mirror job, so it can link the record.
		if js[0].QueueKey != mirrorKey(f.b.ID) {
			t.Fatalf("notice key %q", js[0].QueueKey)
		}
		// The channel's jobs take turns with its workspace's other
		// channels: the notice, the timer and the mirror job all run in
		// the channel's lane.
		var mirrorLanes []string
		if err := db.Gorm.Raw(`SELECT lane FROM jobs WHERE kind = ?`, JobMirror).Scan(&mirrorLanes).Error; err != nil {
			t.Fatal(err)
		}
		if js[0].Lane != f.ch.ID || js[1].Lane != f.ch.ID || len(mirrorLanes) == 0 || mirrorLanes[0] != f.ch.ID {
			t.Fatalf("lanes: notice %q, timer %q, mirror %v; want the channel's %q", js[0].Lane, js[1].Lane, mirrorLanes, f.ch.ID)
		}

		// An answer ends the period; the next message begins another,
		// with the delay as set now.
		f.message(t, ct, store.Outbound, "text", 0)
		if err := db.Gorm.Exec(`UPDATE integrations SET settings = ? WHERE id = ?`, `{"notify_after_seconds":60}`, f.in.ID).Error; err != nil {
			t.Fatal(err)
		}
		f.b.Mirror = MirrorHourly
		if err := f.st.PutBinding(context.Background(), f.b); err != nil {
			t.Fatal(err)
		}
		f.message(t, ct, store.Inbound, "text", 0)
		d = f.dialog(t, ct)
		js = f.jobs(t, d.ID)
		if len(js) != 4 || js[3].Kind != JobEscalate || !js[3].RunAt.Equal(d.WaitingSince.Add(time.Minute)) {
			t.Fatalf("second period: %+v", js)
		}
		if js[2].QueueKey != noticeKey(f.b.ID) {
			t.Fatalf("without a mirror job to follow the notice is keyed %q", js[2].QueueKey)
		}
	})
}

// Who hears of a new waiting customer, and who of one left waiting.
func TestNoticeRecipients(t *testing.T) {
	cases := []struct {
		name     string
		owner    string
		group    []string
		access   []string
		newTo    []string
		escalate []string
	}{
		{"the owner", "5", []string{"3"}, []string{"5", "7"}, []string{"5"}, []string{"5", "7"}},
		{"a deactivated owner: the group", "9", []string{"3", "9"}, []string{"5", "7"}, []string{"3"}, []string{"5", "7"}},
		{"no owner: the group's active members", "", []string{"9", "3", "7"}, []string{"5"}, []string{"3", "7"}, []string{"5"}},
		{"a group of the deactivated: everyone with access", "", []string{"9"}, []string{"5", "7", "9"}, []string{"5", "7"}, []string{"5", "7"}},
		{"no group: everyone with access", "", nil, []string{"7", "5"}, []string{"5", "7"}, []string{"5", "7"}},
		{"nobody with access: the installing user", "", nil, nil, []string{"1"}, []string{"1"}},
		{"only the deactivated with access: the installing user", "", nil, []string{"9"}, []string{"1"}, []string{"1"}},
		{"nobody with access: the escalation still reaches the owner", "3", nil, nil, []string{"3"}, []string{"3"}},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newNoticeFixture(t, db)
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f.policy(t, c.group...)
				f.access(t, c.access...)
				ct := f.contact(t, fmt.Sprintf("7916100%04d", i))
				// The business wrote first, so the dialog has its owner
				// before the customer waits.
				f.message(t, ct, store.Outbound, "text", time.Hour)
				if c.owner != "" {
					k := store.DialogKey{WorkspaceID: f.ws, IntegrationID: f.in.ID, ChannelID: f.ch.ID, ContactID: ct.ID}
					if _, err := store.SetDialogOwner(db.Gorm, k, c.owner, false); err != nil {
						t.Fatal(err)
					}
				}
				f.message(t, ct, store.Inbound, "text", 10*time.Minute)
				before := len(f.crm.sent())
				for _, j := range f.jobs(t, f.dialog(t, ct).ID) {
					if err := f.run(j); err != nil {
						t.Fatalf("%s: %v", j.Kind, err)
					}
				}
				got := f.crm.sent()[before:]
				if len(got) != 2 || got[0].Kind != NoticeNew || got[1].Kind != NoticeEscalation {
					t.Fatalf("notices %+v", got)
				}
				if !slices.Equal(got[0].UserIDs, c.newTo) || !slices.Equal(got[1].UserIDs, c.escalate) {
					t.Fatalf("new to %v, escalation to %v; want %v and %v", got[0].UserIDs, got[1].UserIDs, c.newTo, c.escalate)
				}
				if got[0].Message == nil || got[0].Message.Text != "Где мой заказ?" || got[0].Dialog.Contact == nil || got[1].Waited < 10*time.Minute {
					t.Fatalf("notice content %+v", got[1])
				}
			})
		}
	})
}

// The timer: early it snoozes, due it tells everyone once, a second run
// tells nobody; a failed delivery is retried; a parked integration keeps
// it; an answer or "no reply needed" leaves it nothing to do.
func TestEscalationTimer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newNoticeFixture(t, db)
		escalations := func() int {
			n := 0
			for _, x := range f.crm.sent() {
				if x.Kind == NoticeEscalation {
					n++
				}
			}
			return n
		}
		timer := func(ct *store.Contact) jobRow {
			t.Helper()
			js := f.jobs(t, f.dialog(t, ct).ID)
			if len(js) == 0 || js[len(js)-1].Kind != JobEscalate {
				t.Fatalf("no timer: %+v", js)
			}
			return js[len(js)-1]
		}

		early := f.contact(t, "79162000001")
		f.message(t, early, store.Inbound, "text", 0)
		if err := f.run(timer(early)); !errors.Is(err, errNotDue) || escalations() != 0 {
			t.Fatalf("an early timer: %v, %d sent", err, escalations())
		}

		late := f.contact(t, "79162000002")
		f.message(t, late, store.Inbound, "text", 10*time.Minute)
		f.crm.fail = errors.New("portal down")
		if err := f.run(timer(late)); err == nil || f.dialog(t, late).EscalatedAt != nil {
			t.Fatalf("a failed delivery: %v, dialog %+v", err, f.dialog(t, late).Dialog)
		}
		f.crm.fail = nil
		if err := f.st.SetIntegrationState(ctx, f.in.ID, store.IntegrationNeedsReauth, "test"); err != nil {
			t.Fatal(err)
		}
		if err := f.run(timer(late)); !errors.Is(err, ErrParked) || escalations() != 0 {
			t.Fatalf("parked: %v, %d sent", err, escalations())
		}
		if err := f.st.SetIntegrationState(ctx, f.in.ID, store.IntegrationActive, ""); err != nil {
			t.Fatal(err)
		}
		tm := timer(late)
		if err := f.run(tm); err != nil {
			t.Fatal(err)
		}
		for _, j := range f.jobs(t, f.dialog(t, late).ID) {
			if j.ID == tm.ID {
				t.Fatalf("the timer outlived its run (it ends in the commit of its marks): %+v", j)
			}
		}
		// A duplicate of the timer (another instance's) runs after it.
		if _, err := queue.Enqueue(f.db.Gorm, queue.NewJob{Kind: JobEscalate, Key: tm.QueueKey, Payload: json.RawMessage(tm.Payload)}); err != nil {
			t.Fatal(err)
		}
		if err := f.run(timer(late)); err != nil {
			t.Fatal(err)
		}
		if n := escalations(); n != 1 {
			t.Fatalf("%d escalations from a timer run twice, want 1", n)
		}
		if d := f.dialog(t, late); d.EscalatedAt == nil || !d.EscalatedFor(*d.WaitingSince) {
			t.Fatalf("escalation not marked: %+v", d.Dialog)
		}

		answered := f.contact(t, "79162000003")
		f.message(t, answered, store.Inbound, "text", 10*time.Minute)
		f.message(t, answered, store.Outbound, "text", 0)
		skipped := f.contact(t, "79162000004")
		f.message(t, skipped, store.Inbound, "text", 10*time.Minute)
		if _, err := f.st.DialogNoReplyNeeded(ctx, store.All, f.dialog(t, skipped).ID); err != nil {
			t.Fatal(err)
		}
		for _, ct := range []*store.Contact{answered, skipped} {
			for _, j := range f.jobs(t, f.dialog(t, ct).ID) {
				if err := f.run(j); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, n := range f.crm.sent() {
			if n.Dialog.ContactID == answered.ID || n.Dialog.ContactID == skipped.ID {
				t.Fatalf("the answered or the skipped customer was announced: %+v", n)
			}
		}
		if n := escalations(); n != 1 {
			t.Fatalf("%d escalations, want the one", n)
		}
	})
}

// A customer message that came while the integration needed
// re-authorisation gets no mirror job then; Resume queues the run that
// carries it, and re-arms the parked notices.
func TestResumeQueuesParkedMirror(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newNoticeFixture(t, db)
		mirrors := func() int64 {
			var n int64
			if err := db.Gorm.Table("jobs").Where("kind = ? AND queue_key = ?", JobMirror, mirrorKey(f.b.ID)).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		if err := f.st.SetIntegrationState(ctx, f.in.ID, store.IntegrationNeedsReauth, "test"); err != nil {
			t.Fatal(err)
		}
		ct := f.contact(t, "79163000001")
		f.message(t, ct, store.Inbound, "text", 0)
		js := f.jobs(t, f.dialog(t, ct).ID)
		if mirrors() != 0 || len(js) != 2 || js[0].QueueKey != noticeKey(f.b.ID) {
			t.Fatalf("while parked: %d mirror jobs, notices %+v", mirrors(), js)
		}
		if err := f.st.SetIntegrationState(ctx, f.in.ID, store.IntegrationActive, ""); err != nil {
			t.Fatal(err)
		}
		if err := f.r.Resume(ctx, f.ws); err != nil {
			t.Fatal(err)
		}
		if n := mirrors(); n != 1 {
			t.Fatalf("%d mirror jobs after Resume, want 1", n)
		}
		// The timer, re-armed to now, is not due: it snoozes.
		if err := f.run(f.jobs(t, f.dialog(t, ct).ID)[1]); !errors.Is(err, errNotDue) {
			t.Fatalf("a re-armed timer: %v", err)
		}
	})
}

// Two gateway instances on one database, each timer queued twice: every
// waiting customer is announced and escalated exactly once between them.
func TestEscalationOnceAcrossInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newNoticeFixture(t, db)
		const customers = 20
		var dialogs []*store.DialogView
		for i := range customers {
			ct := f.contact(t, fmt.Sprintf("7916400%04d", i))
			f.message(t, ct, store.Inbound, "text", 10*time.Minute)
			d := f.dialog(t, ct)
			dialogs = append(dialogs, d)
			// A duplicate of the timer, as a retry after a lost lease is.
			if err := f.st.Tx(ctx, func(tx *gorm.DB) error {
				return EnqueueEscalation(tx, f.b, time.Time{})
			}); err != nil {
				t.Fatal(err)
			}
		}
		var crms []*fakeCRM
		for i := range 2 {
			c := &fakeCRM{}
			crms = append(crms, c)
			r := New(f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
			r.Register("fake", c)
			q := queue.New(db, queue.Options{Workers: 4, PollInterval: 20 * time.Millisecond, InstanceID: fmt.Sprintf("gw-%d", i),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			r.Handle(q)
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				q.Stop(sctx)
			})
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			var left int64
			if err := db.Gorm.Table("jobs").Where("kind IN ?", []string{JobNotify, JobEscalate}).Count(&left).Error; err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d notice jobs still queued", left)
			}
			time.Sleep(20 * time.Millisecond)
		}
		count := map[string]int{}
		for _, c := range crms {
			for _, n := range c.sent() {
				count[n.Kind+" "+n.Dialog.ID]++
			}
		}
		for _, d := range dialogs {
			if count[NoticeNew+" "+d.ID] != 1 || count[NoticeEscalation+" "+d.ID] != 1 {
				t.Fatalf("dialog %s: %d new, %d escalations; want 1 each", d.ID, count[NoticeNew+" "+d.ID], count[NoticeEscalation+" "+d.ID])
			}
		}
		if len(crms[0].sent()) == 0 || len(crms[1].sent()) == 0 {
			t.Logf("one instance did all the work (%d / %d): allowed, but the test showed less", len(crms[0].sent()), len(crms[1].sent()))
		}
	})
}

// A burst of new customers: the first notice job carries MaxNotices of
// them in one delivery, the next the rest, the others find nothing; the
// first due timer escalates them all the same way.
func TestNoticesOfABurstTravelTogether(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newNoticeFixture(t, db)
		const customers = MaxNotices + 10
		for i := range customers {
			f.message(t, f.contact(t, fmt.Sprintf("7916500%04d", i)), store.Inbound, "text", 10*time.Minute)
		}
		var rows []jobRow
		if err := db.Gorm.Raw(`SELECT id, kind, queue_key, payload, run_at FROM jobs WHERE kind IN ? ORDER BY kind DESC, id`,
			[]string{JobNotify, JobEscalate}).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2*customers {
			t.Fatalf("%d jobs for %d customers", len(rows), customers)
		}
		for _, j := range rows {
			if err := f.run(j); err != nil {
				t.Fatal(err)
			}
		}
		count := map[string]int{}
		for _, n := range f.crm.sent() {
			count[n.Kind]++
		}
		if f.crm.calls != 4 || count[NoticeNew] != customers || count[NoticeEscalation] != customers {
			t.Fatalf("%d deliveries of %v for %d customers, want 4 (50 + 10 of each kind)", f.crm.calls, count, customers)
		}
	})
}

// A timer run early (re-armed by Resume) escalates what is due in its
// binding and still waits for its own customer's deadline.
func TestEarlyTimerKeepsItsOwnDeadline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newNoticeFixture(t, db)
		due := f.contact(t, "79167000001")
		f.message(t, due, store.Inbound, "text", 10*time.Minute)
		early := f.contact(t, "79167000002")
		f.message(t, early, store.Inbound, "text", 0)
		js := f.jobs(t, f.dialog(t, early).ID)
		if err := f.run(js[len(js)-1]); !errors.Is(err, errNotDue) {
			t.Fatalf("the early timer: %v, want a snooze to its deadline", err)
		}
		sent := f.crm.sent()
		if len(sent) != 1 || sent[0].Kind != NoticeEscalation || sent[0].Dialog.ContactID != due.ID {
			t.Fatalf("notices %+v, want the due customer's escalation", sent)
		}
	})
}

// A notice's marks and its job's end are one commit: a run whose lease
// was taken before its commit marks nothing (ErrLeaseLost; its notice went
// out, and goes again, as after a crash between the two); the run holding
// the job marks the dialog once and leaves no job behind.
func TestNoticeEndsInTheCommitOfItsMarks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newNoticeFixture(t, db)
		ct := f.contact(t, "79163000001")
		f.message(t, ct, store.Inbound, "text", 0)
		var notice jobRow
		for _, j := range f.jobs(t, f.dialog(t, ct).ID) {
			if j.Kind == JobNotify {
				notice = j
			}
		}
		if notice.ID == 0 {
			t.Fatal("no notice job")
		}
		late := queuetest.Hold(t, db, notice.ID, "late")
		holder := queuetest.Hold(t, db, notice.ID, "holder")
		if err := f.r.handleNotify(context.Background(), late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if d := f.dialog(t, ct); d.AnnouncedSince != nil {
			t.Fatalf("a run without the lease marked the dialog: %+v", d.Dialog)
		}
		if err := f.r.handleNotify(context.Background(), holder); err != nil {
			t.Fatal(err)
		}
		if d := f.dialog(t, ct); d.AnnouncedSince == nil || !d.AnnouncedSince.Equal(*d.WaitingSince) {
			t.Fatalf("the holder's run did not mark the dialog: %+v", d.Dialog)
		}
		if queuetest.Exists(t, db, notice.ID) {
			t.Fatal("the notice job outlived the commit of its marks")
		}
	})
}

// A burst of due timers under one binding, with customers answered in the
// meantime among them and one customer not due yet at the end: the first
// run tells MaxNotices and covers the timers of what it told and of the
// answered; each next run tells the next MaxNotices. Every waiting
// customer is escalated once, in a few runs and deliveries; the timer of
// the customer not due yet is left queued and escalates at its time.
func TestEscalationBurstCoversTheTimersBehind(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newNoticeFixture(t, db)
		// 60 s, so the customer not due yet can fall due by a lowered
		// delay rather than by the test sleeping.
		if err := db.Gorm.Exec(`UPDATE integrations SET settings = ? WHERE id = ?`, `{"notify_after_seconds":60}`, f.in.ID).Error; err != nil {
			t.Fatal(err)
		}
		const waiting = 2*MaxNotices + 13
		var answered []*store.Contact
		for i := range waiting {
			f.message(t, f.contact(t, fmt.Sprintf("7916800%04d", i)), store.Inbound, "text", 10*time.Minute)
			if i%10 == 0 {
				ct := f.contact(t, fmt.Sprintf("7916810%04d", i))
				f.message(t, ct, store.Inbound, "text", 10*time.Minute)
				f.message(t, ct, store.Outbound, "text", 0)
				answered = append(answered, ct)
			}
		}
		later := f.contact(t, "79168200001")
		f.message(t, later, store.Inbound, "text", 30*time.Second)
		laterTimer := f.jobs(t, f.dialog(t, later).ID)[1]
		if laterTimer.Kind != JobEscalate {
			t.Fatalf("the later customer's jobs: %+v", f.jobs(t, f.dialog(t, later).ID))
		}
		// Timers of no dialog (a test's, or a duplicate): the one due is
		// covered by a run that listed everything due, the one due in an
		// hour is left for its time.
		for _, at := range []time.Time{time.Time{}, time.Now().Add(time.Hour)} {
			if err := f.st.Tx(context.Background(), func(tx *gorm.DB) error { return EnqueueEscalation(tx, f.b, at) }); err != nil {
				t.Fatal(err)
			}
		}
		var timers []jobRow
		if err := db.Gorm.Raw(`SELECT id, kind, queue_key, payload, run_at FROM jobs WHERE kind = ? ORDER BY id`, JobEscalate).Scan(&timers).Error; err != nil {
			t.Fatal(err)
		}
		hourly := timers[len(timers)-1].ID
		if want := waiting + len(answered) + 3; len(timers) != want {
			t.Fatalf("%d timers, want %d", len(timers), want)
		}
		// The key's order: each timer runs unless a run ahead covered it.
		runs := 0
		for _, j := range timers {
			if !queuetest.Exists(t, db, j.ID) {
				continue
			}
			if j.ID == hourly {
				continue // not yet: it stays queued
			}
			runs++
			err := f.run(j)
			if j.ID == laterTimer.ID {
				if !errors.Is(err, errNotDue) {
					t.Fatalf("the timer of the customer not due yet: %v, want a snooze", err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if runs != 4 || f.crm.calls != 3 {
			t.Fatalf("%d timers: %d runs, %d deliveries; want 4 runs (3 of %d, and the one not due) and 3 deliveries",
				len(timers), runs, f.crm.calls, MaxNotices)
		}
		told := map[string]int{}
		for _, n := range f.crm.sent() {
			told[n.Dialog.ContactID]++
		}
		if len(told) != waiting || told[later.ID] != 0 {
			t.Fatalf("%d customers told (the later one %d times), want the %d waiting", len(told), told[later.ID], waiting)
		}
		for ct, n := range told {
			if n != 1 {
				t.Fatalf("customer %s told %d times", ct, n)
			}
		}
		for _, ct := range answered {
			if told[ct.ID] != 0 {
				t.Fatalf("an answered customer was told: %s", ct.ID)
			}
		}
		var left []int64
		if err := db.Gorm.Raw(`SELECT id FROM jobs WHERE kind = ? ORDER BY id`, JobEscalate).Scan(&left).Error; err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(left, []int64{laterTimer.ID, hourly}) {
			t.Fatalf("timers left %v, want the later customer's %d and the one due in an hour %d", left, laterTimer.ID, hourly)
		}
		// Its time comes (the delay lowered to 20 s): it tells its customer.
		if err := db.Gorm.Exec(`UPDATE integrations SET settings = ? WHERE id = ?`, `{"notify_after_seconds":20}`, f.in.ID).Error; err != nil {
			t.Fatal(err)
		}
		if err := f.run(laterTimer); err != nil {
			t.Fatal(err)
		}
		sent := f.crm.sent()
		if last := sent[len(sent)-1]; len(sent) != waiting+1 || last.Dialog.ContactID != later.ID {
			t.Fatalf("%d notices, the last of %s; want the later customer's after the %d", len(sent), last.Dialog.ContactID, waiting)
		}
		if queuetest.Exists(t, db, laterTimer.ID) || !queuetest.Exists(t, db, hourly) {
			t.Fatal("the later customer's timer outlived its escalation, or the one due in an hour did not")
		}
	})
}
