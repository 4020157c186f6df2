package routing_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// chatCRM is a CRM double with its own chat: it records what it is asked
// to echo there.
type chatCRM struct {
	mu     sync.Mutex
	echoed []echoed
}

type echoed struct {
	text   string
	origin routing.Origin
}

func (*chatCRM) Mirror(context.Context, *routing.Delivery, []store.MessageView) ([]string, error) {
	return nil, nil
}
func (*chatCRM) Status(context.Context, *routing.Delivery, *store.MessageView) error { return nil }
func (*chatCRM) EchoesOutbound(b *store.ChannelBinding) bool                         { return b.Mode == "chat" }
func (c *chatCRM) EchoOutbound(_ context.Context, _ *routing.Delivery, m *store.MessageView, o *routing.Origin) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.echoed = append(c.echoed, echoed{m.Text, *o})
	return nil
}

func (c *chatCRM) got() []echoed {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]echoed(nil), c.echoed...)
}

// noteCRM is a CRM double without a chat, which names its users.
type noteCRM struct{}

func (noteCRM) Mirror(context.Context, *routing.Delivery, []store.MessageView) ([]string, error) {
	return nil, nil
}
func (noteCRM) Status(context.Context, *routing.Delivery, *store.MessageView) error { return nil }
func (noteCRM) DisplayName() string                                                 { return "Notes CRM" }
func (noteCRM) UserName(_ context.Context, _ *store.Integration, id string) string {
	return map[string]string{"7": "Семён"}[id]
}

// TestEchoIntoOtherCRMs: routing alone, with two CRM doubles bound to one
// channel. What the note CRM's user sends is echoed into the chat CRM,
// named; what the chat CRM's own chat sent is not echoed back into it;
// what the chat CRM sent from elsewhere (its card) is, as its own; what
// the API sent is, with no origin. A binding without a chat gets nothing.
func TestEchoIntoOtherCRMs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		install := func(typ string) *store.Integration {
			in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: typ, ExternalID: typ, Domain: typ + ".example", WorkspaceID: ws.ID,
				Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
			if err != nil {
				t.Fatal(err)
			}
			return in
		}
		chatIn, noteIn := install("chatcrm"), install("notecrm")
		ch := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "wa", AccountID: "acc-echo"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		for _, b := range []store.ChannelBinding{{IntegrationID: chatIn.ID, Mode: "chat"}, {IntegrationID: noteIn.ID, Mode: "crm"}} {
			b.WorkspaceID, b.ChannelID = ws.ID, ch.ID
			if err := st.PutBinding(ctx, &b); err != nil {
				t.Fatal(err)
			}
		}
		chat := &chatCRM{}
		r := routing.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		r.Register("chatcrm", chat)
		r.Register("notecrm", noteCRM{})
		q := queue.New(db, queue.Options{Workers: 2, PollInterval: 10 * time.Millisecond, BackoffBase: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
		r.Handle(q)
		r.Notify = q.Notify
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer q.Stop(ctx)

		// send stores an answer to the customer as messaging does, with
		// the writer's marks made in its transaction first (OnStored).
		send := func(text string, marks func(tx *gorm.DB, m *store.Message) error) {
			t.Helper()
			err := st.Tx(ctx, func(tx *gorm.DB) error {
				c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79160000001"}, nil)
				if err != nil {
					return err
				}
				m := &store.Message{WorkspaceID: ws.ID, ChannelID: ch.ID, ContactID: c.ID, Direction: store.Outbound, Type: "text",
					Text: text, Status: string(channel.StatusQueued)}
				if _, err := store.InsertMessage(tx, m); err != nil {
					return err
				}
				if marks != nil {
					if err := marks(tx, m); err != nil {
						return err
					}
				}
				return r.MessageStored(tx, ch, m)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		send("from the note CRM's user", func(tx *gorm.DB, m *store.Message) error {
			return routing.MarkOrigin(tx, noteIn.ID, m.ID, "7")
		})
		send("in the chat CRM's chat", func(tx *gorm.DB, m *store.Message) error {
			if err := routing.MarkOrigin(tx, chatIn.ID, m.ID, "3"); err != nil {
				return err
			}
			return store.PutLink(tx, chatIn.ID, routing.LinkOutbound, m.ID, "chat-msg-1")
		})
		send("from the chat CRM's card", func(tx *gorm.DB, m *store.Message) error {
			return routing.MarkOrigin(tx, chatIn.ID, m.ID, "3")
		})
		send("from the note CRM's automation", func(tx *gorm.DB, m *store.Message) error {
			return routing.MarkOrigin(tx, noteIn.ID, m.ID, "")
		})
		send("through the API", nil)

		// One customer's echoes run in order: once the last is in, every
		// earlier one has run.
		for deadline := time.Now().Add(30 * time.Second); len(chat.got()) < 4 || chat.got()[len(chat.got())-1].text != "through the API"; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("echoed %+v", chat.got())
			}
		}
		want := []echoed{
			{"from the note CRM's user", routing.Origin{IntegrationID: noteIn.ID, CRM: "Notes CRM", UserID: "7", UserName: "Семён"}},
			{"from the chat CRM's card", routing.Origin{IntegrationID: chatIn.ID, Own: true, CRM: "chatcrm", UserID: "3"}},
			{"from the note CRM's automation", routing.Origin{IntegrationID: noteIn.ID, CRM: "Notes CRM"}},
			{"through the API", routing.Origin{}},
		}
		got := chat.got()
		if len(got) != len(want) {
			t.Fatalf("echoed %+v", got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("echo %d: %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}
