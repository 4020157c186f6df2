package routing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// errRollback ends a test transaction after it was looked at.
var errRollback = errors.New("test: roll back")

// StatusesChanged, given a channel's status changes at once, enqueues the
// same status jobs in the same order as StatusChanged called for each:
// one per CRM link of the message (none for a message no CRM sent, two
// for one linked in two CRMs), a message changing twice twice.
func TestStatusesChangedAsStatusChangedEach(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		var ins []*store.Integration
		for _, typ := range []string{"crma", "crmb"} {
			in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: typ, ExternalID: typ, Domain: typ + ".example", WorkspaceID: ws.ID,
				Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
			if err != nil {
				t.Fatal(err)
			}
			ins = append(ins, in)
		}
		ch := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "wa", AccountID: "acc-status"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		var ms []*store.Message
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79160000001"}, nil)
			if err != nil {
				return err
			}
			// links: m0 in A, m1 in B then A, m2 in none, m3 in B.
			linked := [][]*store.Integration{{ins[0]}, {ins[1], ins[0]}, nil, {ins[1]}}
			for i, in := range linked {
				m := &store.Message{WorkspaceID: ws.ID, ChannelID: ch.ID, ContactID: c.ID, Direction: store.Outbound, Type: "text",
					Text: fmt.Sprint("m", i), Status: string(channel.StatusSent)}
				if _, err := store.InsertMessage(tx, m); err != nil {
					return err
				}
				for _, in := range in {
					if err := store.PutLink(tx, in.ID, routing.LinkOutbound, m.ID, fmt.Sprint("remote-", i)); err != nil {
						return err
					}
				}
				ms = append(ms, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		changed := func(m *store.Message, status channel.Status) *store.Message {
			c := *m
			c.Status = string(status)
			return &c
		}
		changes := []*store.Message{changed(ms[1], channel.StatusDelivered), changed(ms[0], channel.StatusRead),
			changed(ms[2], channel.StatusDelivered), changed(ms[1], channel.StatusRead), changed(ms[3], channel.StatusFailed)}
		r := routing.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		// jobs runs enqueue in a transaction it rolls back, and returns the
		// jobs it left, in order.
		jobs := func(enqueue func(tx *gorm.DB) error) []string {
			var out []string
			err := st.Tx(ctx, func(tx *gorm.DB) error {
				if err := enqueue(tx); err != nil {
					return err
				}
				type row struct{ Kind, QueueKey, Payload string }
				var rows []row
				if err := tx.Raw("SELECT kind, queue_key, payload FROM jobs ORDER BY id").Scan(&rows).Error; err != nil {
					return err
				}
				for _, r := range rows {
					out = append(out, r.Kind+" "+r.QueueKey+" "+r.Payload)
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
			return out
		}
		want := jobs(func(tx *gorm.DB) error {
			for _, m := range changes {
				if err := r.StatusChanged(tx, ch, m); err != nil {
					return err
				}
			}
			return nil
		})
		got := jobs(func(tx *gorm.DB) error { return r.StatusesChanged(tx, ch, changes) })
		if len(want) != 6 {
			t.Fatalf("one by one enqueued %d jobs, want 6 (m1 twice in two CRMs, m0, m3):\n%q", len(want), want)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("at once:\n %q\none by one:\n %q", got, want)
		}
	})
}
