package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// statusTwin is a pair of channels holding the same messages: one gets a
// batch of statuses through ApplyStatuses, the other the same statuses
// one by one through ApplyStatus, the oracle.
type statusTwin struct {
	st          *store.Store
	batch, solo *store.Channel
	contacts    map[string]string // channel id -> contact id
}

func newStatusTwin(t *testing.T, db *store.DB) *statusTwin {
	t.Helper()
	ctx := context.Background()
	st, ws := storetest.Workspace(t, db)
	tw := &statusTwin{st: st, contacts: map[string]string{}}
	for i, ch := range []**store.Channel{&tw.batch, &tw.solo} {
		c := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "wa", AccountID: fmt.Sprint("pn-", i)}
		if err := st.CreateChannel(ctx, c, "tok"); err != nil {
			t.Fatal(err)
		}
		*ch = c
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			ct, err := store.UpsertContact(tx, c, channel.Customer{ExternalID: "77010000000"}, nil)
			if err == nil {
				tw.contacts[c.ID] = ct.ID
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return tw
}

// seed stores m (its external id, status, times and error) in both
// channels.
func (tw *statusTwin) seed(t *testing.T, m store.Message) {
	t.Helper()
	for _, ch := range []*store.Channel{tw.batch, tw.solo} {
		c := m
		c.ID, c.WorkspaceID, c.ChannelID, c.ContactID = store.NewID(), ch.WorkspaceID, ch.ID, tw.contacts[ch.ID]
		c.CreatedAt, c.UpdatedAt = store.Now(), store.Now()
		if err := tw.st.DB.Gorm.Create(&c).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// apply runs us through both paths, each in its transaction, and returns
// the rows ApplyStatuses filled and the oracle's rows.
func (tw *statusTwin) apply(t *testing.T, us []channel.StatusUpdate) (got, want []store.StatusRow) {
	t.Helper()
	ctx := context.Background()
	for _, u := range us {
		got = append(got, store.StatusRow{ChannelID: tw.batch.ID, Update: u})
		want = append(want, store.StatusRow{ChannelID: tw.solo.ID, Update: u})
	}
	if err := tw.st.Tx(ctx, func(tx *gorm.DB) error { return store.ApplyStatuses(tx, got) }); err != nil {
		t.Fatal(err)
	}
	err := tw.st.Tx(ctx, func(tx *gorm.DB) error {
		for i := range want {
			r, m, err := store.ApplyStatus(tx, want[i].ChannelID, want[i].Update)
			if err != nil {
				return err
			}
			want[i].Result, want[i].Message = r, m
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, want
}

// sameMessage compares what a status can touch or a hook can read, not
// the ids and times that differ between the twins by construction.
func sameMessage(a, b *store.Message) error {
	if (a == nil) != (b == nil) {
		return fmt.Errorf("message %v, want %v", a, b)
	}
	if a == nil {
		return nil
	}
	if a.Status != b.Status || a.Direction != b.Direction || a.Text != b.Text || a.Type != b.Type ||
		a.ErrorCode != b.ErrorCode || a.ErrorTitle != b.ErrorTitle || a.ErrorDetail != b.ErrorDetail ||
		*a.ExternalID != *b.ExternalID || a.HumanAgent != b.HumanAgent || a.QuotedExternalID != b.QuotedExternalID {
		return fmt.Errorf("message\n %+v\nwant\n %+v", *a, *b)
	}
	for _, p := range []struct {
		name string
		a, b *time.Time
	}{{"provider_at", a.ProviderAt, b.ProviderAt}, {"sent_at", a.SentAt, b.SentAt}, {"delivered_at", a.DeliveredAt, b.DeliveredAt},
		{"read_at", a.ReadAt, b.ReadAt}, {"failed_at", a.FailedAt, b.FailedAt}} {
		if (p.a == nil) != (p.b == nil) || (p.a != nil && !p.a.Equal(*p.b)) {
			return fmt.Errorf("%s of %s: %v, want %v", p.name, *a.ExternalID, p.a, p.b)
		}
	}
	return nil
}

// compareEnd compares the twins' messages and orphans for the external
// ids.
func (tw *statusTwin) compareEnd(t *testing.T, ids []string) {
	t.Helper()
	for _, id := range ids {
		var got, want []store.Message
		if err := tw.st.DB.Gorm.Where("channel_id = ? AND external_id = ?", tw.batch.ID, id).Find(&got).Error; err != nil {
			t.Fatal(err)
		}
		if err := tw.st.DB.Gorm.Where("channel_id = ? AND external_id = ?", tw.solo.ID, id).Find(&want).Error; err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages, want %d", id, len(got), len(want))
		}
		for i := range got {
			if err := sameMessage(&got[i], &want[i]); err != nil {
				t.Fatalf("end state: %v", err)
			}
		}
	}
	type orphan struct {
		ExternalID, Status, Title, Detail string
		Code                              int
		At                                int64
	}
	orphans := func(chID string) []orphan {
		var os []store.OrphanStatus
		if err := tw.st.DB.Gorm.Where("channel_id = ?", chID).Order("id").Find(&os).Error; err != nil {
			t.Fatal(err)
		}
		var out []orphan
		for _, o := range os {
			out = append(out, orphan{o.ExternalID, o.Status, o.ErrorTitle, o.ErrorDetail, o.ErrorCode, o.OccurredAt.Unix()})
		}
		return out
	}
	if got, want := orphans(tw.batch.ID), orphans(tw.solo.ID); !slices.Equal(got, want) {
		t.Fatalf("orphans\n %+v\nwant\n %+v", got, want)
	}
}

// compareRows compares the per-row results and the messages handed back.
func compareRows(t *testing.T, got, want []store.StatusRow) {
	t.Helper()
	for i := range got {
		if got[i].Result != want[i].Result {
			t.Fatalf("row %d (%s %s): result %d, want %d", i, got[i].Update.ExternalID, got[i].Update.Status, got[i].Result, want[i].Result)
		}
		if err := sameMessage(got[i].Message, want[i].Message); err != nil {
			t.Fatalf("row %d (%s %s): %v", i, got[i].Update.ExternalID, got[i].Update.Status, err)
		}
	}
}

// A batch of statuses, mixed in any order over messages in every state,
// unknown messages and duplicates, ends exactly as the same statuses
// applied one by one: the same messages, orphans and per-row results.
func TestApplyStatusesMatchesApplyStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tw := newStatusTwin(t, db)
		seed := uint64(time.Now().UnixNano())
		rng := rand.New(rand.NewPCG(seed, 7))
		t.Logf("seed %d", seed)
		base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		at := func() *time.Time {
			if rng.IntN(2) == 0 {
				return nil
			}
			ts := base.Add(time.Duration(rng.IntN(600)) * time.Second)
			return &ts
		}
		starts := []channel.Status{channel.StatusQueued, channel.StatusSent, channel.StatusDelivered, channel.StatusRead,
			channel.StatusFailed, channel.StatusReceived}
		kinds := []channel.Status{channel.StatusSent, channel.StatusDelivered, channel.StatusRead, channel.StatusFailed}
		for round := range 40 {
			var ids []string
			for i := range 1 + rng.IntN(5) {
				id := fmt.Sprintf("wamid.r%d.m%d", round, i)
				ids = append(ids, id)
				m := store.Message{Direction: store.Outbound, Type: "text", Text: id, ExternalID: &id,
					Status: string(starts[rng.IntN(len(starts))]), SentAt: at(), DeliveredAt: at(), ReadAt: at(), FailedAt: at()}
				if m.Status == string(channel.StatusReceived) {
					m.Direction = store.Inbound
				}
				if m.Status == string(channel.StatusFailed) {
					m.ErrorCode, m.ErrorTitle = 131026, "Message undeliverable"
				}
				tw.seed(t, m)
			}
			// Unknown to both, one of them with an orphan kept before.
			unknown := fmt.Sprintf("wamid.r%d.unknown", round)
			for _, ch := range []*store.Channel{tw.batch, tw.solo} {
				o := store.OrphanStatus{ChannelID: ch.ID, ExternalID: unknown, Status: "delivered", OccurredAt: base, CreatedAt: base}
				if err := tw.st.DB.Gorm.Create(&o).Error; err != nil {
					t.Fatal(err)
				}
			}
			ids = append(ids, unknown, fmt.Sprintf("wamid.r%d.never", round))
			var us []channel.StatusUpdate
			for range 1 + rng.IntN(24) {
				u := channel.StatusUpdate{ExternalID: ids[rng.IntN(len(ids))], Status: kinds[rng.IntN(len(kinds))],
					Timestamp: base.Add(time.Duration(rng.IntN(600)) * time.Second)}
				if u.Status == channel.StatusFailed && rng.IntN(3) > 0 {
					u.Error = &channel.ProviderError{Code: 131047 + rng.IntN(3), Title: "Re-engagement message", Details: fmt.Sprint("details ", rng.IntN(9))}
				}
				us = append(us, u)
				if rng.IntN(5) == 0 { // Meta's redelivery of the same status
					us = append(us, u)
				}
			}
			got, want := tw.apply(t, us)
			compareRows(t, got, want)
			tw.compareEnd(t, ids)
		}
	})
}

// A status without a time takes the batch's clock, as ApplyStatus takes
// its own; an empty batch does nothing.
func TestApplyStatusesWithoutTimestamp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tw := newStatusTwin(t, db)
		id := "wamid.untimed"
		tw.seed(t, store.Message{Direction: store.Outbound, Type: "text", ExternalID: &id, Status: string(channel.StatusSent)})
		before := store.Now()
		got, want := tw.apply(t, []channel.StatusUpdate{{ExternalID: id, Status: channel.StatusDelivered}})
		if got[0].Result != store.StatusApplied || want[0].Result != store.StatusApplied {
			t.Fatalf("results %d and %d, want applied", got[0].Result, want[0].Result)
		}
		var m store.Message
		if err := tw.st.DB.Gorm.Where("channel_id = ? AND external_id = ?", tw.batch.ID, id).First(&m).Error; err != nil {
			t.Fatal(err)
		}
		if m.DeliveredAt == nil || m.DeliveredAt.Before(before) || m.Status != "delivered" {
			t.Fatalf("delivered_at %v (batch began %v), status %s", m.DeliveredAt, before, m.Status)
		}
		if err := tw.st.Tx(context.Background(), func(tx *gorm.DB) error { return store.ApplyStatuses(tx, nil) }); err != nil {
			t.Fatal(err)
		}
	})
}

// The message ApplyStatuses hands back for a hook is every column of the
// row as gorm reads it, the status moved: a column added to Message but
// not to the batch's read would come back empty here.
func TestApplyStatusesReadsEveryField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st, ws := storetest.Workspace(t, db)
		ch := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "wa", AccountID: "pn-every"}
		if err := st.CreateChannel(context.Background(), ch, "tok"); err != nil {
			t.Fatal(err)
		}
		ct, err := store.UpsertContact(db.Gorm, ch, channel.Customer{ExternalID: "7701"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		media := &store.Media{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, State: store.MediaPending, CreatedAt: base, UpdatedAt: base}
		if err := store.InsertMedia(db.Gorm, media); err != nil {
			t.Fatal(err)
		}
		m := &store.Message{}
		v := reflect.ValueOf(m).Elem()
		for i := range v.NumField() {
			s := "v" + v.Type().Field(i).Name
			at := base.Add(time.Duration(i) * time.Minute)
			switch p := v.Field(i).Addr().Interface().(type) {
			case *string:
				*p = s
			case **string:
				*p = &s
			case *bool:
				*p = true
			case *int:
				*p = 400 + i
			case **time.Time:
				*p = &at
			case *time.Time:
				// created_at and updated_at are InsertMessage's own.
			default:
				t.Fatalf("field %s of a type this test does not fill", v.Type().Field(i).Name)
			}
		}
		m.ID, m.WorkspaceID, m.ChannelID, m.ContactID, m.MediaID = "", ch.WorkspaceID, ch.ID, ct.ID, &media.ID
		m.Status = string(channel.StatusSent)
		if ok, err := store.InsertMessage(db.Gorm, m); err != nil || !ok {
			t.Fatalf("insert: %v %v", ok, err)
		}
		var want store.Message
		if err := db.Gorm.Where("id = ?", m.ID).First(&want).Error; err != nil {
			t.Fatal(err)
		}
		want.Status = string(channel.StatusDelivered)
		rows := []store.StatusRow{{ChannelID: ch.ID, Update: channel.StatusUpdate{ExternalID: *m.ExternalID, Status: channel.StatusDelivered, Timestamp: base}}}
		if err := st.Tx(context.Background(), func(tx *gorm.DB) error { return store.ApplyStatuses(tx, rows) }); err != nil {
			t.Fatal(err)
		}
		if rows[0].Result != store.StatusApplied || rows[0].Message == nil {
			t.Fatalf("result %d, message %v", rows[0].Result, rows[0].Message)
		}
		gv, wv := reflect.ValueOf(*rows[0].Message), reflect.ValueOf(want)
		for i := range gv.NumField() {
			name := gv.Type().Field(i).Name
			g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
			switch w := w.(type) {
			case time.Time:
				if !g.(time.Time).Equal(w) {
					t.Errorf("%s: %v, gorm read %v", name, g, w)
				}
			case *time.Time:
				if gt := g.(*time.Time); (gt == nil) != (w == nil) || (gt != nil && !gt.Equal(*w)) {
					t.Errorf("%s: %v, gorm read %v", name, gt, w)
				}
			default:
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s: %#v, gorm read %#v", name, g, w)
				}
			}
		}
	})
}

// A writer that does not take the external-id lock (MarkFailed) moving a
// message between the batch's read and its write fails the batch, rather
// than the batch writing what it folded from a stale read: the caller
// then applies the statuses one by one. PostgreSQL only: SQLite has one
// writer, so nothing moves in between.
func TestApplyStatusesRefusesAMovedMessage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if db.Dialect != store.Postgres {
			t.Skip("one writer at a time on SQLite")
		}
		ctx := context.Background()
		tw := newStatusTwin(t, db)
		id := "wamid.moved"
		tw.seed(t, store.Message{Direction: store.Outbound, Type: "text", ExternalID: &id, Status: string(channel.StatusSent)})
		var m store.Message
		if err := db.Gorm.Where("channel_id = ? AND external_id = ?", tw.batch.ID, id).First(&m).Error; err != nil {
			t.Fatal(err)
		}
		locked, release := make(chan struct{}), make(chan struct{})
		other := make(chan error, 1)
		go func() {
			other <- tw.st.Tx(ctx, func(tx *gorm.DB) error {
				if err := store.MarkFailed(tx, &m, channel.ProviderError{Code: 131026, Title: "Message undeliverable"}); err != nil {
					return err
				}
				close(locked)
				<-release
				return nil
			})
		}()
		<-locked
		batch := make(chan error, 1)
		go func() {
			rows := []store.StatusRow{{ChannelID: tw.batch.ID, Update: channel.StatusUpdate{ExternalID: id, Status: channel.StatusFailed,
				Timestamp: time.Now(), Error: &channel.ProviderError{Code: 131047, Title: "Re-engagement message"}}}}
			batch <- tw.st.Tx(ctx, func(tx *gorm.DB) error { return store.ApplyStatuses(tx, rows) })
		}()
		// Release the other writer once the batch has read "sent" and its
		// write waits for the row.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var waiting int64
			err := db.Gorm.Raw(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%read_status%'`).Scan(&waiting).Error
			if err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the batch's write never waited for the row")
			}
		}
		close(release)
		if err := <-other; err != nil {
			t.Fatal(err)
		}
		if err := <-batch; err == nil {
			t.Fatal("the batch wrote over a message that moved after its read")
		}
		var got store.Message
		if err := db.Gorm.Where("id = ?", m.ID).First(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got.Status != string(channel.StatusFailed) || got.ErrorCode != 131026 {
			t.Fatalf("status %s, error %d; want MarkFailed's failed 131026", got.Status, got.ErrorCode)
		}
	})
}
