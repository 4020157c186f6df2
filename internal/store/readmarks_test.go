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

// The customer's latest message is the one Meta timed last, not the one
// stored last: two webhooks sent a second apart can arrive the other way
// round, and the read mark must go on the later one.
func TestLatestInboundGoesByMetasTime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, _ := storetest.Workspace(t, db)
		ch := newChannel(t, st)
		base := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
		var contactID string
		// The later message (by Meta's time) is stored first.
		for _, in := range []struct {
			wamid string
			at    time.Time
		}{{"wamid.later", base.Add(time.Second)}, {"wamid.earlier", base}} {
			err := st.Tx(ctx, func(tx *gorm.DB) error {
				at := in.at
				wamid := in.wamid
				m := &store.Message{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, Direction: store.Inbound, Type: string(channel.MsgText), Text: in.wamid,
					ExternalID: &wamid, Status: string(channel.StatusReceived), ProviderAt: &at}
				ct, _, err := store.UpsertContactWithMessage(tx, ch, channel.Customer{ExternalID: "79160000001"}, &at, m)
				if err == nil {
					contactID = ct.ID
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		m, err := st.LatestInbound(ctx, ch.ID, contactID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != "wamid.later" {
			t.Errorf("latest inbound %q, want wamid.later", m.Text)
		}
	})
}
