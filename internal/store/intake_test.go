package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func intakeStore(t *testing.T, db *store.DB) *store.Store {
	t.Helper()
	box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
	return store.New(db, box)
}

// The one-statement upsert: created once, then refreshed only with what a
// delivery brings, the service window never moving back, and updated_at
// left alone when nothing changed.
func TestUpsertContactRefreshesOnlyWhatItIsGiven(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := intakeStore(t, db)
		ch := newChannel(t, st)
		up := func(c channel.Customer, at *time.Time) *store.Contact {
			t.Helper()
			var ct *store.Contact
			err := st.Tx(context.Background(), func(tx *gorm.DB) error {
				var err error
				ct, err = store.UpsertContact(tx, ch, c, at)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return ct
		}
		t1 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
		first := up(channel.Customer{ExternalID: "7701", Name: "Анна", Phone: "+7701"}, &t1)
		if !first.Created || first.Name != "Анна" || first.LastInboundAt == nil || !first.LastInboundAt.Equal(t1) {
			t.Fatalf("first upsert: %+v", first)
		}
		// An echo (no time) without a name: nothing changes.
		again := up(channel.Customer{ExternalID: "7701"}, nil)
		if again.Created || again.ID != first.ID || again.Name != "Анна" || again.Phone != "+7701" {
			t.Fatalf("second upsert: %+v", again)
		}
		if !again.UpdatedAt.Equal(first.UpdatedAt) {
			t.Fatalf("updated_at moved with nothing changed: %s → %s", first.UpdatedAt, again.UpdatedAt)
		}
		// An older message (delivered late) does not move the window back.
		t0 := t1.Add(-time.Hour)
		late := up(channel.Customer{ExternalID: "7701", Name: "Анна"}, &t0)
		if late.LastInboundAt == nil || !late.LastInboundAt.Equal(t1) {
			t.Fatalf("window moved back to %v", late.LastInboundAt)
		}
		// A newer one with a new name moves it and renames.
		t2 := t1.Add(time.Hour)
		newer := up(channel.Customer{ExternalID: "7701", Name: "Анна К."}, &t2)
		if newer.Name != "Анна К." || newer.Phone != "+7701" || newer.LastInboundAt == nil || !newer.LastInboundAt.Equal(t2) {
			t.Fatalf("newer upsert: %+v", newer)
		}
		var stored store.Contact
		if err := db.Gorm.Where("id = ?", first.ID).First(&stored).Error; err != nil {
			t.Fatal(err)
		}
		if stored.Name != "Анна К." || stored.LastInboundAt == nil || !stored.LastInboundAt.Equal(t2) || !stored.UpdatedAt.After(first.UpdatedAt) {
			t.Fatalf("stored contact: %+v", stored)
		}
	})
}

// Of many concurrent first deliveries from one customer exactly one reports
// the contact as created (it alone enqueues the profile fetch).
func TestUpsertContactCreatedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := intakeStore(t, db)
		ch := newChannel(t, st)
		const n = 12
		created := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = st.Tx(context.Background(), func(tx *gorm.DB) error {
					c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "7702"}, nil)
					if err == nil {
						created[i] = c.Created
					}
					return err
				})
			}()
		}
		wg.Wait()
		count := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if created[i] {
				count++
			}
		}
		if count != 1 {
			t.Fatalf("%d calls reported the contact created, want 1", count)
		}
	})
}

// The routing cache never hides a change made through the store: a
// disabled channel stops receiving, a new WABA or workspace is seen at
// once, and a caller's copy is its own.
func TestChannelByAccountSeesChangesAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := intakeStore(t, db)
		ch := newChannel(t, st)
		look := func() (*store.Channel, error) {
			return st.ChannelByAccount(ctx, channel.Type(ch.Type), ch.AccountID)
		}
		got, err := look()
		if err != nil || got.ID != ch.ID {
			t.Fatalf("lookup: %v %v", got, err)
		}
		got.WorkspaceID = "scribbled"
		if again, _ := look(); again.WorkspaceID != ch.WorkspaceID {
			t.Fatalf("a caller's change reached the cache: %q", again.WorkspaceID)
		}

		disabled, active := store.ChannelDisabled, store.ChannelActive
		if _, err := st.UpdateChannel(ctx, store.All, ch.ID, store.ChannelUpdate{State: &disabled}); err != nil {
			t.Fatal(err)
		}
		if _, err := look(); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("disabled channel still routed: %v", err)
		}
		if _, err := st.UpdateChannel(ctx, store.All, ch.ID, store.ChannelUpdate{State: &active}); err != nil {
			t.Fatal(err)
		}
		waba := "555"
		if _, err := look(); err != nil { // cached again before the next change
			t.Fatal(err)
		}
		if _, err := st.UpdateChannel(ctx, store.All, ch.ID, store.ChannelUpdate{WabaID: &waba}); err != nil {
			t.Fatal(err)
		}
		if got, err := look(); err != nil || got.WabaID != waba {
			t.Fatalf("new WABA not seen: %+v %v", got, err)
		}

		ws, err := st.CreateWorkspace(ctx, "other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.MoveChannel(ctx, ch.ID, ws.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := look(); err != nil || got.WorkspaceID != ws.ID {
			t.Fatalf("moved channel routed into its old workspace: %+v %v", got, err)
		}

		if err := st.SetChannelState(ctx, ch.ID, store.ChannelDisabled, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := look(); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("channel disabled by the gateway still routed: %v", err)
		}

		// Behind the store's back, ForgetChannels makes the change seen.
		if err := db.Gorm.Model(&store.Channel{}).Where("id = ?", ch.ID).Update("state", store.ChannelActive).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := look(); err != nil { // not cached while unknown
			t.Fatalf("re-enabled channel not found: %v", err)
		}
		if err := db.Gorm.Model(&store.Channel{}).Where("id = ?", ch.ID).Update("state", store.ChannelDisabled).Error; err != nil {
			t.Fatal(err)
		}
		st.ForgetChannels()
		if _, err := look(); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after ForgetChannels a disabled channel is still routed: %v", err)
		}
	})
}
