package messaging

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// statusDelivery is a delivery of statuses for the channel of account.
func statusDelivery(account string, us []channel.StatusUpdate) *channel.Batch {
	return &channel.Batch{Envelopes: []channel.Envelope{{
		ChannelType: channel.WhatsApp, AccountID: account, Owner: "waba-1", Statuses: slices.Clone(us),
	}}}
}

// statusCounts reads the outbound status counters of the message metric.
func (f *groupFixture) statusCounts(t *testing.T) map[channel.Status]float64 {
	t.Helper()
	out := map[channel.Status]float64{}
	for _, st := range []channel.Status{channel.StatusSent, channel.StatusDelivered, channel.StatusRead, channel.StatusFailed} {
		var m dto.Metric
		if err := f.svc.metrics.Messages.WithLabelValues(string(channel.WhatsApp), store.Outbound, string(st)).Write(&m); err != nil {
			t.Fatal(err)
		}
		out[st] = m.GetCounter().GetValue()
	}
	return out
}

// Status deliveries stored together in one group, mixing statuses for the
// same messages in any order with duplicates and unknown messages, end
// exactly as the same deliveries stored one by one: messages, orphans,
// the answers' counts, the hook calls and the metrics. The group applies
// its deliveries in lock order (by the first status's message, a
// message's deliveries in their arrival order), so the one-by-one oracle
// runs them in that order on a twin channel.
func TestGroupCommitAppliesStatusesAsOneByOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newGroupFixture(t, db)
		f.inOrder = true
		ctx := context.Background()
		solo := &store.Channel{WorkspaceID: f.ch.WorkspaceID, Type: string(channel.WhatsApp), Name: "twin", AccountID: "pn-2", WabaID: "waba-1"}
		if err := f.st.CreateChannel(ctx, solo, "token"); err != nil {
			t.Fatal(err)
		}
		contacts := map[string]string{}
		for _, ch := range []*store.Channel{f.ch, solo} {
			err := f.st.Tx(ctx, func(tx *gorm.DB) error {
				c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "77010000001"}, nil)
				if err == nil {
					contacts[ch.ID] = c.ID
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 11))
		base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		starts := []channel.Status{channel.StatusQueued, channel.StatusSent, channel.StatusDelivered, channel.StatusRead, channel.StatusFailed}
		kinds := []channel.Status{channel.StatusSent, channel.StatusDelivered, channel.StatusRead, channel.StatusFailed}
		for round := range 6 {
			var ids []string
			for i := range 2 + rng.IntN(6) {
				id := fmt.Sprintf("wamid.r%d.m%d", round, i)
				ids = append(ids, id)
				start := starts[rng.IntN(len(starts))]
				for _, ch := range []*store.Channel{f.ch, solo} {
					now := store.Now()
					m := store.Message{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ContactID: contacts[ch.ID],
						Direction: store.Outbound, Type: "text", Text: id, ExternalID: &id, Status: string(start), CreatedAt: now, UpdatedAt: now}
					if err := f.st.DB.Gorm.Create(&m).Error; err != nil {
						t.Fatal(err)
					}
				}
			}
			ids = append(ids, fmt.Sprintf("wamid.r%d.unknown", round))
			update := func() channel.StatusUpdate {
				u := channel.StatusUpdate{ExternalID: ids[rng.IntN(len(ids))], Status: kinds[rng.IntN(len(kinds))],
					Timestamp: base.Add(time.Duration(rng.IntN(600)) * time.Second)}
				if u.Status == channel.StatusFailed && rng.IntN(2) == 0 {
					u.Error = &channel.ProviderError{Code: 131047, Title: "Re-engagement message", Details: fmt.Sprint("try ", rng.IntN(5))}
				}
				return u
			}
			// Mostly one status per delivery, as WhatsApp sends them; some
			// carry several; some are redelivered verbatim.
			var plan [][]channel.StatusUpdate
			for range 10 + rng.IntN(30) {
				us := []channel.StatusUpdate{update()}
				if rng.IntN(4) == 0 {
					us = append(us, update(), update())
				}
				plan = append(plan, us)
				if rng.IntN(6) == 0 {
					plan = append(plan, us)
				}
			}
			var grouped []*channel.Batch
			for _, us := range plan {
				grouped = append(grouped, statusDelivery("pn-1", us))
			}
			// Customer messages in the same group, stored by their own runs.
			grouped = append(grouped, text(fmt.Sprintf("wamid.r%d.in1", round), "7101", "in"), text(fmt.Sprintf("wamid.r%d.in2", round), "7102", "in"))
			f.hook.mu.Lock()
			f.hook.statuses = nil
			f.hook.mu.Unlock()
			before := f.statusCounts(t)
			f.hook.gate = make(chan struct{})
			answers := f.ingestGrouped(t, grouped...)[1:]
			mid := f.statusCounts(t)

			order := make([]int, len(plan))
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(plan[a][0].ExternalID, plan[b][0].ExternalID) })
			soloAnswers := make([]IngestResult, len(plan))
			for _, i := range order {
				res, err := f.svc.Ingest(ctx, statusDelivery("pn-2", plan[i]), nil)
				if err != nil {
					t.Fatal(err)
				}
				soloAnswers[i] = res
			}
			after := f.statusCounts(t)

			for i := range plan {
				if answers[i].err != nil || answers[i].res != soloAnswers[i] {
					t.Fatalf("delivery %d: %+v %v, one by one %+v", i, answers[i].res, answers[i].err, soloAnswers[i])
				}
			}
			for st := range before {
				if g, s := mid[st]-before[st], after[st]-mid[st]; g != s {
					t.Errorf("metric %s counted %v in the group, %v one by one", st, g, s)
				}
			}
			f.hook.mu.Lock()
			var g, s []string
			var txs []*gorm.DB
			for _, c := range f.hook.statuses {
				if c.channelID == f.ch.ID {
					g = append(g, c.externalID+" "+c.status)
					txs = append(txs, c.tx)
				} else {
					s = append(s, c.externalID+" "+c.status)
				}
			}
			f.hook.mu.Unlock()
			if !slices.Equal(g, s) {
				t.Fatalf("hook calls\n %q\none by one\n %q", g, s)
			}
			// Counted over the rounds: one round's random plan may change
			// no more than one message of the channel.
			if round == 5 && f.hook.batches == 0 {
				t.Errorf("the hook was never handed several status changes at once")
			}
			if len(slices.Compact(txs)) > 1 {
				t.Errorf("the group's statuses were applied in %d transactions, not its one", len(slices.Compact(txs)))
			}
			for _, id := range ids {
				var got, want []store.Message
				if err := f.st.DB.Gorm.Where("channel_id = ? AND external_id = ?", f.ch.ID, id).Find(&got).Error; err != nil {
					t.Fatal(err)
				}
				if err := f.st.DB.Gorm.Where("channel_id = ? AND external_id = ?", solo.ID, id).Find(&want).Error; err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d messages, one by one %d", id, len(got), len(want))
				}
				for i := range got {
					a, b := got[i], want[i]
					if a.Status != b.Status || a.ErrorCode != b.ErrorCode || a.ErrorDetail != b.ErrorDetail ||
						!sameTime(a.SentAt, b.SentAt) || !sameTime(a.DeliveredAt, b.DeliveredAt) || !sameTime(a.ReadAt, b.ReadAt) || !sameTime(a.FailedAt, b.FailedAt) {
						t.Fatalf("%s:\n %+v\none by one\n %+v", id, a, b)
					}
				}
			}
			orphans := func(chID string) []string {
				var os []store.OrphanStatus
				if err := f.st.DB.Gorm.Where("channel_id = ?", chID).Order("id").Find(&os).Error; err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, o := range os {
					out = append(out, fmt.Sprint(o.ExternalID, o.Status, o.ErrorCode, o.ErrorDetail, o.OccurredAt.Unix()))
				}
				return out
			}
			if got, want := orphans(f.ch.ID), orphans(solo.ID); !slices.Equal(got, want) {
				t.Fatalf("orphans\n %q\none by one\n %q", got, want)
			}
		}
	})
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// A status delivery that cannot be stored fails its group's transaction;
// each member is then stored alone, so only that one is refused and the
// others' statuses are applied once, by their own transactions.
func TestGroupCommitIsolatesTheBadStatusDelivery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newGroupFixture(t, db)
		f.inOrder = true
		ctx := context.Background()
		var c *store.Contact
		err := f.st.Tx(ctx, func(tx *gorm.DB) error {
			var err error
			c, err = store.UpsertContact(tx, f.ch, channel.Customer{ExternalID: "77010000001"}, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"wamid.ok1", "wamid.z.bad", "wamid.ok2"} {
			now := store.Now()
			m := store.Message{ID: store.NewID(), WorkspaceID: f.ch.WorkspaceID, ChannelID: f.ch.ID, ContactID: c.ID,
				Direction: store.Outbound, Type: "text", ExternalID: &id, Status: string(channel.StatusSent), CreatedAt: now, UpdatedAt: now}
			if err := f.st.DB.Gorm.Create(&m).Error; err != nil {
				t.Fatal(err)
			}
		}
		at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		answers := f.ingestGrouped(t,
			statusDelivery("pn-1", []channel.StatusUpdate{{ExternalID: "wamid.ok1", Status: channel.StatusRead, Timestamp: at}}),
			statusDelivery("pn-1", []channel.StatusUpdate{{ExternalID: "wamid.z.bad", Status: channel.StatusDelivered, Timestamp: at}}),
			statusDelivery("pn-1", []channel.StatusUpdate{{ExternalID: "wamid.ok2", Status: channel.StatusDelivered, Timestamp: at}}),
		)
		for i, a := range answers {
			if wantErr := i == 2; (a.err != nil) != wantErr {
				t.Fatalf("answer %d: %+v %v (want error: %v)", i, a.res, a.err, wantErr)
			}
		}
		for id, want := range map[string]string{"wamid.ok1": "read", "wamid.z.bad": "sent", "wamid.ok2": "delivered"} {
			var m store.Message
			if err := f.st.DB.Gorm.Where("channel_id = ? AND external_id = ?", f.ch.ID, id).First(&m).Error; err != nil {
				t.Fatal(err)
			}
			if m.Status != want {
				t.Errorf("%s: %s, want %s", id, m.Status, want)
			}
		}
		// Each good status reached the hook twice: in the group's
		// transaction, rolled back, then in its own.
		f.hook.mu.Lock()
		defer f.hook.mu.Unlock()
		txOf := map[string][]*gorm.DB{}
		for _, c := range f.hook.statuses {
			txOf[c.externalID] = append(txOf[c.externalID], c.tx)
		}
		ok1, ok2 := txOf["wamid.ok1"], txOf["wamid.ok2"]
		if len(ok1) != 2 || len(ok2) != 2 || ok1[0] != ok2[0] || ok1[1] == ok1[0] || ok2[1] == ok1[1] {
			t.Errorf("ok1 in %d transactions, ok2 in %d; want a shared one, then one each", len(ok1), len(ok2))
		}
	})
}
