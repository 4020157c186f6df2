package messaging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/metrics"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// groupHook watches the ingest transactions: it holds the one storing the
// text "gate" until released, fails the statement of "bad", and makes the
// commit of a transaction that stored "poison" (or any, while poisonAll is
// set) fail by a deferred foreign-key violation, which both engines check
// only at COMMIT.
type groupHook struct {
	gate      chan struct{}
	mu        sync.Mutex
	txOf      map[string][]*gorm.DB // text -> the transactions that stored it, in order
	statuses  []statusCall
	batches   int // StatusesChanged calls with several changes
	poisonAll bool
}

var errBad = errors.New("test: this message is refused")

func (h *groupHook) MessageStored(tx *gorm.DB, ch *store.Channel, m *store.Message) error {
	h.mu.Lock()
	h.txOf[m.Text] = append(h.txOf[m.Text], tx)
	poison := h.poisonAll || m.Text == "poison"
	h.mu.Unlock()
	switch {
	case m.Text == "gate":
		<-h.gate
	case m.Text == "bad":
		return errBad
	case m.Text == "panic":
		panic("test: a hook panics")
	}
	if poison {
		for _, q := range []string{
			`CREATE TEMP TABLE IF NOT EXISTS poison_parent (id INTEGER PRIMARY KEY)`,
			`CREATE TEMP TABLE IF NOT EXISTS poison_child (parent INTEGER REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
			`INSERT INTO poison_child (parent) VALUES (42)`,
		} {
			if err := tx.Exec(q).Error; err != nil {
				return err
			}
		}
	}
	return nil
}

// statusCall is one StatusChanged call the hook saw.
type statusCall struct {
	channelID, externalID, status string
	tx                            *gorm.DB
}

func (h *groupHook) StatusChanged(tx *gorm.DB, ch *store.Channel, m *store.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.statuses = append(h.statuses, statusCall{ch.ID, *m.ExternalID, m.Status, tx})
	if *m.ExternalID == "wamid.z.bad" { // sorts after the others in a group
		return errBad
	}
	return nil
}

// StatusesChanged records each change as StatusChanged does, and counts
// the calls with more than one.
func (h *groupHook) StatusesChanged(tx *gorm.DB, ch *store.Channel, ms []*store.Message) error {
	h.mu.Lock()
	if len(ms) > 1 {
		h.batches++
	}
	h.mu.Unlock()
	for _, m := range ms {
		if err := h.StatusChanged(tx, ch, m); err != nil {
			return err
		}
	}
	return nil
}

// groupFixture is a Service on a fresh database with one WhatsApp channel
// and the hook above.
type groupFixture struct {
	svc  *Service
	st   *store.Store
	ch   *store.Channel
	hook *groupHook
	// gates counts ingestGrouped's calls.
	gates int
	// inOrder makes ingestGrouped's deliveries join the group in the
	// order given, each once the previous one waits.
	inOrder bool
}

func newGroupFixture(t *testing.T, db *store.DB) *groupFixture {
	t.Helper()
	ctx := context.Background()
	st, ws := storetest.Workspace(t, db)
	ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "t", AccountID: "pn-1", WabaID: "waba-1"}
	if err := st.CreateChannel(ctx, ch, "token"); err != nil {
		t.Fatal(err)
	}
	svc := New(st, channel.NewRegistry(), nil, nil, metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), Config{}, nil)
	hook := &groupHook{gate: make(chan struct{}), txOf: map[string][]*gorm.DB{}}
	svc.AddHook(hook)
	// One leader on both engines: the gate then holds the only group
	// under way, and every delivery after it waits for the next group.
	svc.committer.maxLeaders = 1
	// The gate holds SQLite's only connection in its transaction: a
	// delivery whose channel lookup missed the cache would wait for it
	// instead of joining the next group (seen under -race in CI, where
	// a second passed between the gate's lookup and the others').
	st.CacheChannelsFor(time.Hour)
	return &groupFixture{svc: svc, st: st, ch: ch, hook: hook}
}

// text is a delivery of one text message from a customer.
func text(wamid, customer, body string) *channel.Batch {
	return &channel.Batch{Envelopes: []channel.Envelope{{
		ChannelType: channel.WhatsApp, AccountID: "pn-1", Owner: "waba-1",
		Messages: []channel.Inbound{{ExternalID: wamid, Customer: channel.Customer{ExternalID: customer},
			Type: channel.MsgText, Text: body, Timestamp: time.Unix(1767600000, 0)}},
	}}}
}

type answer struct {
	res IngestResult
	err error
}

// ingestGrouped ingests the gate delivery, then the others while the gate
// holds the only leader, so that the others form one group; it returns
// every answer, the gate's first.
func (f *groupFixture) ingestGrouped(t *testing.T, others ...*channel.Batch) []answer {
	t.Helper()
	ctx := context.Background()
	f.hook.mu.Lock()
	f.hook.txOf = map[string][]*gorm.DB{}
	f.hook.mu.Unlock()
	// Each call's gate is a new message: a redelivered one would call no
	// hook, and so hold nothing.
	gate := "wamid.gate"
	if f.gates > 0 {
		gate = fmt.Sprintf("wamid.gate.%d", f.gates)
	}
	f.gates++
	answers := make([]answer, len(others)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		answers[0] = f.ingest(ctx, text(gate, "7000", "gate"))
	}()
	f.waitFor(t, func() bool { return len(f.hook.txOf["gate"]) == 1 })
	for i, b := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i+1] = f.ingest(ctx, b)
		}()
		if f.inOrder {
			f.waitFor(t, func() bool { return len(f.svc.committer.pending) == i+1 })
		}
	}
	f.waitFor(t, func() bool { return len(f.svc.committer.pending) == len(others) })
	close(f.hook.gate)
	wg.Wait()
	return answers
}

// ingest is Ingest with a panic turned into an error, as the HTTP
// server's recovery turns it into a 500.
func (f *groupFixture) ingest(ctx context.Context, b *channel.Batch) (a answer) {
	defer func() {
		if p := recover(); p != nil {
			a.err = fmt.Errorf("panic: %v", p)
		}
	}()
	a.res, a.err = f.svc.Ingest(ctx, b, nil)
	return a
}

// waitFor polls cond under the hook's and the committer's locks; the
// deadline only keeps a broken test from hanging.
func (f *groupFixture) waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		f.hook.mu.Lock()
		f.svc.committer.mu.Lock()
		ok := cond()
		f.svc.committer.mu.Unlock()
		f.hook.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatal("condition not reached")
}

// texts are the stored messages' texts, sorted.
func (f *groupFixture) texts(t *testing.T) []string {
	t.Helper()
	var out []string
	if err := f.st.DB.Gorm.Model(&store.Message{}).Where("channel_id = ?", f.ch.ID).Order("text").Pluck("text", &out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

// One bad delivery in a group: the group's transaction rolls back, each
// delivery is stored again alone, and only the bad one is answered with
// an error. A wamid twice in the group is stored once, and the gate's
// wamid, committed by the group before, is a duplicate here.
func TestGroupCommitIsolatesTheBadDelivery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newGroupFixture(t, db)
		answers := f.ingestGrouped(t,
			text("wamid.a", "7001", "a"),
			text("wamid.bad", "7009", "bad"), // sorts last in the group
			text("wamid.b", "7003", "b"),
			text("wamid.b", "7003", "b"),    // Meta's redelivery, in the same group
			text("wamid.gate", "7000", "x"), // redelivery of the previous group's message
		)
		for i, a := range answers {
			wantErr := i == 2
			if (a.err != nil) != wantErr {
				t.Fatalf("answer %d: %v (want error: %v)", i, a.err, wantErr)
			}
		}
		if !errors.Is(answers[2].err, errBad) {
			t.Errorf("the bad delivery's error: %v", answers[2].err)
		}
		stored, dups := 0, 0
		for _, a := range answers {
			stored, dups = stored+a.res.Stored, dups+a.res.Duplicates
		}
		if stored != 3 || dups != 2 {
			t.Errorf("stored %d, duplicates %d; want 3 and 2", stored, dups)
		}
		if got, want := f.texts(t), []string{"a", "b", "gate"}; !slices.Equal(got, want) {
			t.Errorf("stored %q, want %q", got, want)
		}
		// The good ones were first stored in the group's one transaction
		// (rolled back), then alone.
		f.hook.mu.Lock()
		defer f.hook.mu.Unlock()
		a, b := f.hook.txOf["a"], f.hook.txOf["b"]
		if len(a) != 2 || len(b) < 2 || a[0] != b[0] || a[1] == a[0] {
			t.Errorf("a stored in %d transactions, b in %d; the first not shared", len(a), len(b))
		}
	})
}

// Without failures a group is one transaction: every member was stored in
// it once and is answered from it.
func TestGroupCommitSharesOneTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newGroupFixture(t, db)
		answers := f.ingestGrouped(t,
			text("wamid.a", "7001", "a"), text("wamid.b", "7002", "b"), text("wamid.c", "7001", "c"))
		for i, a := range answers {
			if a.err != nil || a.res.Stored != 1 {
				t.Fatalf("answer %d: %+v %v", i, a.res, a.err)
			}
		}
		f.hook.mu.Lock()
		defer f.hook.mu.Unlock()
		a, b, c := f.hook.txOf["a"], f.hook.txOf["b"], f.hook.txOf["c"]
		if len(a) != 1 || len(b) != 1 || len(c) != 1 || a[0] != b[0] || b[0] != c[0] {
			t.Errorf("transactions: a %d, b %d, c %d, not one shared", len(a), len(b), len(c))
		}
		if got, want := f.texts(t), []string{"a", "b", "c", "gate"}; !slices.Equal(got, want) {
			t.Errorf("stored %q, want %q", got, want)
		}
	})
}

// A commit that fails answers every member of its group with an error:
// no delivery is acknowledged before the commit that holds it. Then the
// one whose own commit fails is the only one refused.
//
// PostgreSQL only: a deferred foreign key is the one way to make a COMMIT
// fail from inside a transaction, and SQLite keeps the transaction open
// after such a failed COMMIT (neither database/sql nor gorm rolls back
// after a failed commit), so the next transaction on its one connection
// would commit the first one's rows. The schema declares no deferred
// constraint, so the gateway itself never meets that case.
func TestGroupCommitAnswersOnlyAfterCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if db.Dialect != store.Postgres {
			t.Skip("a COMMIT cannot be made to fail cleanly on SQLite (see above)")
		}
		f := newGroupFixture(t, db)
		f.hook.poisonAll = true
		answers := f.ingestGrouped(t, text("wamid.a", "7001", "a"), text("wamid.b", "7002", "b"))
		for i, a := range answers {
			if a.err == nil {
				t.Errorf("answer %d acknowledged a delivery whose commit failed: %+v", i, a.res)
			}
		}
		if got := f.texts(t); len(got) != 0 {
			t.Fatalf("stored %q after failed commits", got)
		}

		f.hook.poisonAll = false
		f.hook.gate = make(chan struct{})
		answers = f.ingestGrouped(t, text("wamid.a", "7001", "a"), text("wamid.p", "7002", "poison"), text("wamid.b", "7003", "b"))
		for i, a := range answers {
			if wantErr := i == 2; (a.err != nil) != wantErr {
				t.Errorf("answer %d: %v (want error: %v)", i, a.err, wantErr)
			}
		}
		if got, want := f.texts(t), []string{"a", "b", "gate"}; !slices.Equal(got, want) {
			t.Errorf("stored %q, want %q", got, want)
		}
	})
}

// A caller that gives up while its delivery waits for a group leaves the
// queue and is answered with its context's error; nothing of it is stored.
func TestGroupCommitCallerGivesUpWhileWaiting(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newGroupFixture(t, db)
		ctx := context.Background()
		done := make(chan error, 1)
		go func() {
			_, err := f.svc.Ingest(ctx, text("wamid.gate", "7000", "gate"), nil)
			done <- err
		}()
		f.waitFor(t, func() bool { return len(f.hook.txOf["gate"]) == 1 })
		cctx, cancel := context.WithCancel(ctx)
		gaveUp := make(chan error, 1)
		go func() {
			_, err := f.svc.Ingest(cctx, text("wamid.late", "7001", "late"), nil)
			gaveUp <- err
		}()
		f.waitFor(t, func() bool { return len(f.svc.committer.pending) == 1 })
		cancel()
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Fatalf("the caller that gave up got %v", err)
		}
		close(f.hook.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := f.texts(t), []string{"gate"}; !slices.Equal(got, want) {
			t.Errorf("stored %q, want %q", got, want)
		}
	})
}

// A hook that panics inside a group still lets every member be answered
// (none waits forever), and the leader's slot is free again afterwards.
func TestGroupCommitSurvivesAPanic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newGroupFixture(t, db)
		answers := f.ingestGrouped(t, text("wamid.a", "7001", "a"), text("wamid.p", "7002", "panic"))
		if answers[0].err != nil || answers[1].err == nil || answers[2].err == nil {
			t.Fatalf("answers: %+v", answers)
		}
		if a := f.ingest(context.Background(), text("wamid.after", "7003", "after")); a.err != nil || a.res.Stored != 1 {
			t.Fatalf("after the panic: %+v", a)
		}
	})
}

// A customer's messages in one group are stored in the order they arrived,
// whatever their wamids: the group is sorted by channel and customer for
// its locks, never by wamid within a customer.
func TestGroupCommitKeepsACustomersArrivalOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newGroupFixture(t, db)
		ctx := context.Background()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.ingest(ctx, text("wamid.gate", "7000", "gate"))
		}()
		f.waitFor(t, func() bool { return len(f.hook.txOf["gate"]) == 1 })
		// Arriving one after another, with wamids that sort backwards.
		arrivals := []*channel.Batch{text("wamid.z", "7001", "first"), text("wamid.m", "7002", "other"),
			text("wamid.y", "7001", "second"), text("wamid.x", "7001", "third")}
		errs := make([]error, len(arrivals))
		for i, b := range arrivals {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = f.svc.Ingest(ctx, b, nil)
			}()
			f.waitFor(t, func() bool { return len(f.svc.committer.pending) == i+1 })
		}
		close(f.hook.gate)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("delivery %d: %v", i, err)
			}
		}
		var got []string
		err := f.st.DB.Gorm.Model(&store.Message{}).
			Joins("JOIN contacts ON contacts.id = messages.contact_id").
			Where("messages.channel_id = ? AND contacts.external_id = ?", f.ch.ID, "7001").
			Order("messages.created_at, messages.id").Pluck("messages.text", &got).Error
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"first", "second", "third"}; !slices.Equal(got, want) {
			t.Errorf("stored in the order %q, want %q", got, want)
		}
	})
}

// Many callers at once, with stores of random length, deliveries that
// fail (a group holding one is stored again alone, member by member) and
// callers that give up at random moments. Every delivery is answered
// exactly once (its commit returns, and no second answer is left in its
// wake), nil only for a delivery that is stored, and the ones that
// neither fail nor give up all succeed. Throughout, a sampler checks under
// the committer's lock that no delivery waits while a leader's slot is
// free (see committer), and at the end no slot is held. A slot freed
// without the next group handed over fails the sampler, and leaves the
// last waiters asleep until the deadline.
//
// SQLite runs on a file here, not in memory: a caller that gives up while
// its delivery is stored alone ends that transaction by its context, and
// database/sql then discards the connection, with it the in-memory
// database, which lives only as long as its one connection.
func TestGroupCommitHammered(t *testing.T) {
	each := func(t *testing.T, f func(t *testing.T, db *store.DB)) {
		t.Run("sqlite", func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, "", filepath.Join(t.TempDir(), "switchboard.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			f(t, db)
		})
		if os.Getenv(storetest.EnvURL) != "" {
			t.Run("postgres", func(t *testing.T) { f(t, storetest.Postgres(t)) })
		}
	}
	each(t, func(t *testing.T, db *store.DB) {
		f := newGroupFixture(t, db)
		f.svc.AddHook(slowHook{})
		close(f.hook.gate) // no delivery here is held
		// The engine's own number of leaders, then more than it has.
		leaders := leadersSQLite
		if db.Dialect == store.Postgres {
			leaders = leadersPostgres
		}
		for round, n := range []int{leaders, 3} {
			t.Run(fmt.Sprintf("leaders=%d", n), func(t *testing.T) {
				hammerGroupCommit(t, f, n, fmt.Sprintf("r%d-", round))
			})
		}
	})
}

// slowHook makes storing each message take a random while, so that groups
// form and leaders finish in any order.
type slowHook struct{}

func (slowHook) MessageStored(*gorm.DB, *store.Channel, *store.Message) error {
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	return nil
}

func (slowHook) StatusChanged(*gorm.DB, *store.Channel, *store.Message) error { return nil }

// hammerGroupCommit runs the test above with the given number of leaders;
// prefix keeps a round's messages apart from an earlier round's.
func hammerGroupCommit(t *testing.T, f *groupFixture, leaders int, prefix string) {
	c := &f.svc.committer
	c.maxLeaders = leaders

	const callers, each = 24, 12
	type outcome struct {
		d      *delivery
		text   string
		bad    bool
		gaveUp bool // its context was cancelled at some point
		err    error
	}
	outcomes := make([]outcome, callers*each)

	// The sampler sees the committer only between two critical sections,
	// which is where the invariant must hold.
	stop := make(chan struct{})
	var violations, maxPending int
	var violation string
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.mu.Lock()
			if c.leaders < c.maxLeaders && len(c.pending) > 0 {
				violations++
				violation = fmt.Sprintf("%d of %d slots busy with %d deliveries pending", c.leaders, c.maxLeaders, len(c.pending))
			}
			maxPending = max(maxPending, len(c.pending))
			c.mu.Unlock()
			time.Sleep(20 * time.Microsecond)
		}
	}()

	var wg sync.WaitGroup
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := g*each + i
				o := &outcomes[n]
				o.text = fmt.Sprintf("%sm%03d", prefix, n)
				o.bad = rand.IntN(10) == 0
				if o.bad {
					o.text = "bad"
				}
				ctx := context.Background()
				if rand.IntN(8) == 0 {
					cctx, cancel := context.WithCancel(ctx)
					o.gaveUp = true
					time.AfterFunc(time.Duration(rand.IntN(2000))*time.Microsecond, cancel)
					ctx = cctx
				}
				b := text(fmt.Sprintf("wamid.%s%03d", prefix, n), fmt.Sprintf("70%02d", rand.IntN(20)), o.text)
				// Built as Ingest builds it, and committed as Ingest does,
				// so that the test keeps the delivery and can look into its
				// wake afterwards.
				o.d = &delivery{ctx: ctx, work: []routed{{f.ch, &b.Envelopes[0]}}, wake: make(chan []*delivery, 1)}
				o.err = f.svc.commit(o.d)
				time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		// A guard against a hang, not a measure: the hammer takes a second.
		close(stop)
		<-sampled
		c.mu.Lock()
		state := fmt.Sprintf("%d of %d slots busy, %d deliveries pending", c.leaders, c.maxLeaders, len(c.pending))
		c.mu.Unlock()
		t.Fatalf("deliveries still waiting after 60s: %s; %d times one waited beside a free slot", state, violations)
	}
	close(stop)
	<-sampled
	if violations > 0 {
		t.Errorf("%d times a delivery waited beside a free slot, e.g. %s", violations, violation)
	}
	if maxPending == 0 {
		t.Errorf("no delivery ever waited for a group: the hammer did not hit")
	}
	c.mu.Lock()
	if c.leaders != 0 || len(c.pending) != 0 {
		t.Errorf("after the last answer: %d slots busy, %d deliveries pending", c.leaders, len(c.pending))
	}
	c.mu.Unlock()

	stored := map[string]bool{}
	for _, s := range f.texts(t) {
		stored[s] = true
	}
	var answered, refused, leftEarly int
	for _, o := range outcomes {
		switch {
		case len(o.d.wake) != 0:
			t.Errorf("%s: a second answer is waiting in its wake", o.text)
		case o.err == nil && (o.bad || !stored[o.text] || o.d.res.Stored != 1):
			t.Errorf("%s: acknowledged (stored %d) but not in the database", o.text, o.d.res.Stored)
		case o.bad && o.err == nil, o.bad && !o.gaveUp && !errors.Is(o.err, errBad):
			t.Errorf("bad delivery answered with %v", o.err)
		case !o.bad && !o.gaveUp && o.err != nil:
			t.Errorf("%s: refused: %v", o.text, o.err)
		}
		switch {
		case o.err == nil:
			answered++
		case o.bad:
			refused++
		default:
			leftEarly++
		}
	}
	t.Logf("%d stored, %d refused, %d given up; at most %d waiting at once", answered, refused, leftEarly, maxPending)
}
