package app_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// BenchmarkRoutingPerInbound measures the routing work the ingest
// transaction does for one inbound customer message: Router.MessageStored
// in its own transaction, as messaging calls it after storing the
// message. Unbound it only looks the channel's bindings up; bound in CRM
// mode it also upserts the customer's dialog and queues the binding's
// crm.mirror job. The difference between the two is what routing adds to
// each webhook; the transaction itself is in both. routing_only has
// nothing else in the transaction, so a bound channel also pays the
// commit of a writing transaction (an fsync) that an unbound one skips;
// with_message_insert stores the message first, as ingest does, so the
// commit is paid by both and the difference is routing's own statements.
// Messages rotate over
// 500 customers, so dialogs are updated far more often than created, as
// in steady traffic.
func BenchmarkRoutingPerInbound(b *testing.B) {
	engines := []bool{false}
	if os.Getenv(storetest.EnvURL) != "" {
		engines = append(engines, true)
	}
	for _, pg := range engines {
		for _, withMessage := range []bool{false, true} {
			for _, mode := range []string{"unbound", "crm"} {
				name := "sqlite"
				if pg {
					name = "postgres"
				}
				tx := "/routing_only/"
				if withMessage {
					tx = "/with_message_insert/"
				}
				b.Run(name+tx+mode, func(b *testing.B) { benchRouting(b, pg, withMessage, mode) })
			}
		}
	}
}

func benchRouting(b *testing.B, pg, withMessage bool, mode string) {
	ctx := context.Background()
	e := apptest.Start(b, apptest.Options{Postgres: pg, NoStart: true})
	chID := e.CreateWhatsApp()
	ch, err := e.App.Store.GetChannel(ctx, store.All, chID)
	if err != nil {
		b.Fatal(err)
	}
	if mode == "crm" {
		in, _, err := e.App.Store.UpsertIntegration(ctx, store.InstallParams{Type: "bitrix24", ExternalID: apptest.B24MemberID,
			Domain: apptest.B24Domain, WorkspaceID: ch.WorkspaceID, Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.App.Store.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ch.WorkspaceID, IntegrationID: in.ID,
			ChannelID: ch.ID, Mode: "crm", Entity: "lead"}); err != nil {
			b.Fatal(err)
		}
	}
	contacts := make([]string, 500)
	err = e.App.Store.Tx(ctx, func(tx *gorm.DB) error {
		for i := range contacts {
			c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: fmt.Sprintf("7916%07d", i), Phone: fmt.Sprintf("+7916%07d", i)}, nil)
			if err != nil {
				return err
			}
			contacts[i] = c.ID
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := &store.Message{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ContactID: contacts[i%len(contacts)],
			Direction: store.Inbound, Type: string(channel.MsgText), Text: "Здравствуйте", CreatedAt: store.Now()}
		err := e.App.Store.Tx(ctx, func(tx *gorm.DB) error {
			if withMessage {
				if _, err := store.InsertMessage(tx, m); err != nil {
					return err
				}
			}
			return e.App.Router.MessageStored(tx, ch, m)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
