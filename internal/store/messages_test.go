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
