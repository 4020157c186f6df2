package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// Instagram echoes our send and the customer reads it, possibly both
// before the send call's own transaction records the mid: the read lands
// on the echo's copy, and folding the copy into our message keeps it.
func TestMarkSentKeepsWhatHappenedToTheEcho(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
		st := store.New(db, box)
		ch := newChannel(t, st)
		ctx := context.Background()
		const mid = "aWdfZAG1faaa"
		readAt := time.Date(2026, 11, 30, 10, 0, 5, 0, time.UTC)
		var ours store.Message
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "1133627508796544"}, nil)
			if err != nil {
				return err
			}
			now := store.Now()
			ours = store.Message{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ContactID: c.ID, Direction: store.Outbound,
				Type: "text", Text: "Да, есть.", Status: string(channel.StatusQueued), CreatedAt: now, UpdatedAt: now}
			ext := mid
			echo := ours
			echo.ID, echo.ExternalID, echo.Status = store.NewID(), &ext, string(channel.StatusSent)
			if err := tx.Create(&ours).Error; err != nil {
				return err
			}
			if err := tx.Create(&echo).Error; err != nil {
				return err
			}
			_, _, err = store.ApplyStatus(tx, ch.ID, channel.StatusUpdate{ExternalID: mid, Status: channel.StatusRead, Timestamp: readAt})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Tx(ctx, func(tx *gorm.DB) error { return store.MarkSent(tx, &ours, mid) }); err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMessage(ctx, store.All, ours.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != string(channel.StatusRead) || m.ReadAt == nil || !m.ReadAt.Equal(readAt) || m.ExternalID == nil || *m.ExternalID != mid {
			t.Fatalf("after folding the echo: status %s, read_at %v, external id %v", m.Status, m.ReadAt, m.ExternalID)
		}
		var copies int64
		db.Gorm.Model(&store.Message{}).Where("channel_id = ? AND external_id = ?", ch.ID, mid).Count(&copies)
		if copies != 1 {
			t.Fatalf("%d messages carry the mid, want 1", copies)
		}
	})
}

// A status webhook stored while the send's transaction records the wamid
// must not be lost: on PostgreSQL each transaction used to miss the
// other's rows (the status kept as an orphan after MarkSent had read the
// orphans). Here MarkSent's transaction stays open a moment after it read
// them, and the status arrives in that moment. The same holds for a
// status applied in a group's batch (ApplyStatuses), which takes the same
// lock.
func TestStatusDuringMarkSentIsNotLost(t *testing.T) {
	appliers := map[string]func(tx *gorm.DB, channelID string, u channel.StatusUpdate) error{
		"alone": func(tx *gorm.DB, channelID string, u channel.StatusUpdate) error {
			_, _, err := store.ApplyStatus(tx, channelID, u)
			return err
		},
		"batch": func(tx *gorm.DB, channelID string, u channel.StatusUpdate) error {
			other := u
			other.ExternalID = "wamid.another"
			return store.ApplyStatuses(tx, []store.StatusRow{{ChannelID: channelID, Update: other}, {ChannelID: channelID, Update: u}})
		},
	}
	for name, apply := range appliers {
		t.Run(name, func(t *testing.T) { statusDuringMarkSent(t, apply) })
	}
}

func statusDuringMarkSent(t *testing.T, apply func(tx *gorm.DB, channelID string, u channel.StatusUpdate) error) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
		st := store.New(db, box)
		ch := newChannel(t, st)
		ctx := context.Background()
		var contact *store.Contact
		if err := st.Tx(ctx, func(tx *gorm.DB) error {
			var err error
			contact, err = store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79161234567"}, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			now := store.Now()
			m := store.Message{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ContactID: contact.ID, Direction: store.Outbound,
				Type: "text", Text: "x", Status: string(channel.StatusQueued), CreatedAt: now, UpdatedAt: now}
			if err := db.Gorm.Create(&m).Error; err != nil {
				t.Fatal(err)
			}
			wamid := "wamid.race" + string(rune('a'+i))
			marked := make(chan struct{})
			done := make(chan error, 2)
			go func() {
				done <- st.Tx(ctx, func(tx *gorm.DB) error {
					if err := store.MarkSent(tx, &m, wamid); err != nil {
						return err
					}
					close(marked)
					time.Sleep(30 * time.Millisecond) // the status arrives now
					return nil
				})
			}()
			go func() {
				if db.Dialect == "postgres" {
					<-marked
				}
				done <- st.Tx(ctx, func(tx *gorm.DB) error {
					return apply(tx, ch.ID, channel.StatusUpdate{ExternalID: wamid, Status: channel.StatusDelivered, Timestamp: store.Now()})
				})
			}()
			for range 2 {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			got, err := st.GetMessage(ctx, store.All, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != string(channel.StatusDelivered) || got.DeliveredAt == nil {
				t.Fatalf("round %d: status %s after a delivery that came while the send committed", i, got.Status)
			}
		}
	})
}
