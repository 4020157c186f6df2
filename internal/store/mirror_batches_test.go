package store_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// storeInbound stores a customer message and opens its batch window in tx,
// as the ingest does.
func storeInbound(t *testing.T, tx *gorm.DB, ch *store.Channel, b *store.ChannelBinding, opens, closes time.Time, text string) (msgID string, created bool) {
	t.Helper()
	c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79160000001"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &store.Message{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ContactID: c.ID, Direction: store.Inbound,
		Type: "text", Text: text, Status: string(channel.StatusReceived)}
	if _, err := store.InsertMessage(tx, m); err != nil {
		t.Fatal(err)
	}
	created, err = store.OpenMirrorBatch(tx, b, "hourly", opens, closes)
	if err != nil {
		t.Fatal(err)
	}
	return m.ID, created
}

// TestCloseMirrorBatchWaitsForTheMessageBeingStored: a message whose
// transaction has joined the window's batch but not committed yet is not
// missed by a closer that runs meanwhile: the closer waits for it. A
// message stored after the close opens the window again, and every message
// is in exactly one batch.
func TestCloseMirrorBatchWaitsForTheMessageBeingStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := testStore(t, db)
		f := newDialogFixture(t, st, defaultWS(t, st), "acc-1", "member-1")
		b := &store.ChannelBinding{WorkspaceID: f.ws, IntegrationID: f.in.ID, ChannelID: f.ch.ID, Mode: "crm", Entity: "lead", Mirror: "hourly"}
		if err := st.PutBinding(ctx, b); err != nil {
			t.Fatal(err)
		}
		opens := store.Now().Truncate(time.Hour)
		closes := opens.Add(time.Hour)
		var first bool
		if err := st.Tx(ctx, func(tx *gorm.DB) error {
			_, first = storeInbound(t, tx, f.ch, b, opens, closes, "one")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !first {
			t.Fatal("the window's first message did not open its batch")
		}

		tx := db.Gorm.Begin()
		if _, created := storeInbound(t, tx, f.ch, b, opens, closes, "two"); created {
			t.Fatal("a second batch for the same open window")
		}
		type result struct {
			closed bool
			n      int
			err    error
		}
		got := make(chan result, 1)
		go func() {
			var r result
			r.err = st.Tx(ctx, func(tx *gorm.DB) error {
				open, err := store.OpenMirrorBatches(tx, f.in.ID, nil)
				if err != nil || len(open) != 1 {
					t.Errorf("open batches: %d %v", len(open), err)
					return err
				}
				r.closed, r.n, err = store.CloseMirrorBatch(tx, &open[0], b.CreatedAt, time.Time{}, "mirrored")
				return err
			})
			got <- r
		}()
		// Give the closer time to reach the batch's row; the result must
		// not depend on it.
		time.Sleep(200 * time.Millisecond)
		if err := tx.Commit().Error; err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.err != nil || !r.closed || r.n != 2 {
			t.Fatalf("close: closed=%v n=%d err=%v; want both messages", r.closed, r.n, r.err)
		}

		// After the close the window opens again for a late message.
		var again bool
		if err := st.Tx(ctx, func(tx *gorm.DB) error {
			_, again = storeInbound(t, tx, f.ch, b, opens, closes, "three")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !again {
			t.Fatal("a message after the close found no window to join")
		}
		if err := st.Tx(ctx, func(tx *gorm.DB) error {
			open, err := store.OpenMirrorBatches(tx, f.in.ID, &closes)
			if err != nil || len(open) != 1 {
				t.Fatalf("open batches: %d %v", len(open), err)
			}
			closed, n, err := store.CloseMirrorBatch(tx, &open[0], b.CreatedAt, closes, "mirrored")
			if err != nil || !closed || n != 1 {
				t.Fatalf("second close: %v %d %v", closed, n, err)
			}
			// Closing it again takes nothing.
			if closed, n, err := store.CloseMirrorBatch(tx, &open[0], b.CreatedAt, closes, "mirrored"); closed || n != 0 || err != nil {
				t.Fatalf("closed twice: %v %d %v", closed, n, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var items int64
		db.Gorm.Model(&store.MirrorBatchItem{}).Count(&items)
		if items != 3 {
			t.Fatalf("%d batch items for 3 messages", items)
		}
	})
}
