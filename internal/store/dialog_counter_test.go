package store_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// queuedTo stores a customer and an outbound message queued to them, as
// messaging.Send does, and returns the contact's and the message's ids.
func queuedTo(t *testing.T, st *store.Store, ch *store.Channel, customer string) (contactID, messageID string) {
	t.Helper()
	err := st.Tx(context.Background(), func(tx *gorm.DB) error {
		c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: customer}, nil)
		if err != nil {
			return err
		}
		m := &store.Message{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ContactID: c.ID, Direction: store.Outbound,
			Type: "text", Text: "hi", Status: string(channel.StatusQueued)}
		if _, err := store.InsertMessage(tx, m); err != nil {
			return err
		}
		contactID, messageID = c.ID, m.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return contactID, messageID
}

func heldUntil(t *testing.T, st *store.Store, messageID string) *time.Time {
	t.Helper()
	m, err := st.GetMessage(context.Background(), store.All, messageID)
	if err != nil {
		t.Fatal(err)
	}
	return m.HeldUntil
}

func TestAdmitDialogCountsEachCustomerOncePerHour(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
		st := store.New(db, box)
		ctx := context.Background()
		ch := newChannel(t, st)
		hour := time.Date(2026, 11, 30, 12, 0, 0, 0, time.FixedZone("+05", 5*3600))
		next := hour.Add(time.Hour)
		admit := func(contact, message string, at time.Time) store.DialogVerdict {
			t.Helper()
			v, err := st.AdmitDialog(ctx, store.DialogAdmission{ChannelID: ch.ID, ContactID: contact, MessageID: message,
				HourStart: at, Limit: 2, Retry: at.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		a, am := queuedTo(t, st, ch, "77010000001")
		b, bm := queuedTo(t, st, ch, "77010000002")
		c, cm := queuedTo(t, st, ch, "77010000003")
		_, cm2 := queuedTo(t, st, ch, "77010000003") // queued behind cm

		if v := admit(a, am, hour); !v.Admitted || !v.Counted || v.ThisHour != 1 {
			t.Fatalf("first customer: %+v", v)
		}
		if v := admit(b, bm, hour); !v.Admitted || !v.Counted || v.ThisHour != 2 {
			t.Fatalf("second customer: %+v", v)
		}
		if v := admit(c, cm, hour); v.Admitted || v.Counted || v.ThisHour != 2 {
			t.Fatalf("third customer over the limit: %+v", v)
		}
		if h := heldUntil(t, st, cm); h == nil || !h.Equal(next) {
			t.Fatalf("held message's held_until = %v, want %v", h, next)
		}
		if held, err := st.HeldDialogs(ctx, ch.WorkspaceID); err != nil || len(held) != 1 || held[0] != (store.HeldDialog{ChannelID: ch.ID, ContactID: c}) {
			t.Fatalf("held dialogs = %v, %v; want the third customer's", held, err)
		}
		// A customer counted this hour is not a new dialog.
		if v := admit(a, "", hour); !v.Admitted || v.Counted || v.ThisHour != 2 {
			t.Fatalf("counted customer again: %+v", v)
		}
		stats, err := st.DialogStats(ctx, ch.ID, hour)
		if err != nil {
			t.Fatal(err)
		}
		// The held message and the one queued behind it to the same
		// customer wait; the admitted ones (still queued) do not.
		if stats.ThisHour != 2 || stats.Waiting != 2 {
			t.Fatalf("stats = %+v, want 2 this hour and 2 waiting", stats)
		}

		// The next hour has room again, and the old hour is gone.
		if v := admit(c, cm, next); !v.Admitted || !v.Counted || v.ThisHour != 1 {
			t.Fatalf("held customer in the next hour: %+v", v)
		}
		if h := heldUntil(t, st, cm); h != nil {
			t.Fatalf("admitted message still held until %v", h)
		}
		if held, err := st.HeldDialogs(ctx, ch.WorkspaceID); err != nil || len(held) != 0 {
			t.Fatalf("held dialogs after the release = %v, %v", held, err)
		}
		if stats, err = st.DialogStats(ctx, ch.ID, next); err != nil || stats.ThisHour != 1 || stats.Waiting != 0 {
			t.Fatalf("next hour stats = %+v, %v", stats, err)
		}
		if old, err := st.DialogStats(ctx, ch.ID, hour); err != nil || old.ThisHour != 0 {
			t.Fatalf("the old hour was kept: %+v, %v", old, err)
		}
		if h := heldUntil(t, st, cm2); h != nil {
			t.Fatalf("a message queued behind the held one is marked held itself: %v", h)
		}

		// No limit: everyone is admitted and still counted.
		v, err := st.AdmitDialog(ctx, store.DialogAdmission{ChannelID: ch.ID, ContactID: a, HourStart: next, Limit: 0, Retry: next.Add(time.Hour)})
		if err != nil || !v.Admitted || !v.Counted || v.ThisHour != 2 {
			t.Fatalf("without a limit: %+v, %v", v, err)
		}
	})
}

// admitAll asks for one dialog per customer at once through the given
// stores in turn, and returns how many were counted.
func admitAll(t *testing.T, stores []*store.Store, ch *store.Channel, contacts []string, limit int, hour time.Time) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counted := 0
	start := make(chan struct{})
	for i, c := range contacts {
		wg.Add(1)
		go func(st *store.Store, contact string) {
			defer wg.Done()
			<-start
			v, err := st.AdmitDialog(context.Background(), store.DialogAdmission{ChannelID: ch.ID, ContactID: contact,
				HourStart: hour, Limit: limit, Retry: hour.Add(time.Hour)})
			if err != nil {
				t.Error(err)
				return
			}
			if v.Admitted != v.Counted {
				t.Errorf("new customer admitted=%v counted=%v", v.Admitted, v.Counted)
			}
			if v.Counted {
				mu.Lock()
				counted++
				mu.Unlock()
			}
		}(stores[i%len(stores)], c)
	}
	close(start)
	wg.Wait()
	return counted
}

func contacts(t *testing.T, st *store.Store, ch *store.Channel, n int) []string {
	var ids []string
	for i := range n {
		c, _ := queuedTo(t, st, ch, fmt.Sprintf("7701%07d", i))
		ids = append(ids, c)
	}
	return ids
}

// Many workers want the hour's last slots at once: exactly the limit is
// counted.
func TestAdmitDialogRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
		st := store.New(db, box)
		ch := newChannel(t, st)
		hour := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		const limit = 5
		if n := admitAll(t, []*store.Store{st}, ch, contacts(t, st, ch, 40), limit, hour); n != limit {
			t.Fatalf("%d dialogs counted, want exactly %d", n, limit)
		}
		if s, err := st.DialogStats(context.Background(), ch.ID, hour); err != nil || s.ThisHour != limit {
			t.Fatalf("stats %+v, %v", s, err)
		}
	})
}

// Two gateway instances (two pools) on one PostgreSQL race for the last
// slots of an hour: exactly the limit is counted across both.
func TestAdmitDialogRaceAcrossInstances(t *testing.T) {
	url := storetest.URL(t)
	box, _ := secret.NewBox(bytes.Repeat([]byte{2}, 32))
	var stores []*store.Store
	for range 2 {
		db, err := store.Open(context.Background(), url, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		stores = append(stores, store.New(db, box))
	}
	ch := newChannel(t, stores[0])
	hour := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ids := contacts(t, stores[0], ch, 60)
	// Part of the hour is taken already, so the race is for the last slots.
	if n := admitAll(t, stores, ch, ids[:4], 7, hour); n != 4 {
		t.Fatalf("%d counted before the race, want 4", n)
	}
	for range 3 { // the race is short; run it a few times
		if n := admitAll(t, stores, ch, ids[4:], 7, hour); n != 3 {
			t.Fatalf("%d dialogs counted in the race for the last 3 slots, want exactly 3", n)
		}
		// A new hour with 4 slots taken again, for another race.
		hour = hour.Add(time.Hour)
		if n := admitAll(t, stores, ch, ids[:4], 7, hour); n != 4 {
			t.Fatalf("%d counted before the race, want 4", n)
		}
	}
	if s, err := stores[1].DialogStats(context.Background(), ch.ID, hour); err != nil || s.ThisHour != 4 {
		t.Fatalf("stats %+v, %v", s, err)
	}
}
