package messaging

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/metrics"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/queue/queuetest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// namedProfiles is a messenger that names every customer "Anna".
type namedProfiles struct{ calls atomic.Int32 }

func (p *namedProfiles) FetchProfile(context.Context, channel.Credentials, string) (*channel.Customer, error) {
	p.calls.Add(1)
	return &channel.Customer{Name: "Anna"}, nil
}

// The profile job names the customer and ends in the same commit: a run
// whose lease was taken before its commit names nobody and gets
// ErrLeaseLost, and the run that holds the job names the customer and
// leaves no job behind.
func TestProfileJobEndsInTheCommitOfTheName(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		var contactID string
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			ct, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79160000001"}, nil)
			if err != nil {
				return err
			}
			contactID = ct.ID
			_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobProfile, WorkspaceID: ws.ID, Payload: profileJob{ContactID: ct.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		profiles := &namedProfiles{}
		reg := channel.NewRegistry()
		reg.Register(&channel.Provider{Type: channel.WhatsApp, Profiles: profiles})
		s := New(st, reg, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{}, nil)
		name := func() string {
			t.Helper()
			ct, err := st.ContactByID(ctx, contactID)
			if err != nil {
				t.Fatal(err)
			}
			return ct.Name
		}

		id := queuetest.Only(t, db, JobProfile)
		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		if err := s.handleProfile(ctx, late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if n := name(); n != "" {
			t.Fatalf("a run without the lease named the customer %q", n)
		}
		if err := s.handleProfile(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if n := name(); n != "Anna" {
			t.Fatalf("the customer is named %q, want Anna", n)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the profile job outlived the commit of the name")
		}
	})
}

// A send that fails for good (the channel is in error) records the
// message as failed and ends the job in one commit: a run whose lease was
// taken records nothing; the holder's run fails the message once and
// leaves no job.
func TestFailedSendEndsInTheCommitOfTheFailure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		m := &store.Message{WorkspaceID: ws.ID, ChannelID: ch.ID, Direction: store.Outbound, Type: "text", Text: "hello",
			Status: string(channel.StatusQueued)}
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			ct, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79160000001"}, nil)
			if err != nil {
				return err
			}
			m.ContactID = ct.ID
			if _, err := store.InsertMessage(tx, m); err != nil {
				return err
			}
			_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobSend, WorkspaceID: ws.ID, Key: sendKey(ch.ID, ct.ID), Payload: sendJob{MessageID: m.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetChannelState(ctx, ch.ID, store.ChannelError, "token expired"); err != nil {
			t.Fatal(err)
		}
		s := New(st, channel.NewRegistry(), nil, nil, metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), Config{}, nil)
		status := func() string {
			t.Helper()
			mv, err := st.GetMessage(ctx, store.All, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			return mv.Status
		}

		id := queuetest.Only(t, db, JobSend)
		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		if err := s.handleSend(ctx, late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if got := status(); got != string(channel.StatusQueued) {
			t.Fatalf("a run without the lease left the message %s", got)
		}
		if err := s.handleSend(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if got := status(); got != string(channel.StatusFailed) {
			t.Fatalf("the message is %s, want failed", got)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the send job outlived the commit of the failure")
		}
	})
}

// A sent template is stored as the customer reads it — the synced body
// with the parameters in place — so the cabinet, the CRM and its notices
// show the text; a template not synced yet keeps a preview naming it.
func TestSentTemplateStoredAsItsText(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		err := st.ReplaceTemplates(ctx, ch.ID, []store.ChannelTemplate{{Name: "order_update", Language: "ru", Status: "APPROVED",
			Components: `[{"type":"HEADER","format":"TEXT","text":"Заказ"},{"type":"BODY","text":"Здравствуйте, {{1}}! Заказ {{2}} передан в доставку."}]`}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		reg := channel.NewRegistry()
		reg.Register(&channel.Provider{Type: channel.WhatsApp})
		s := New(st, reg, nil, nil, metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), Config{}, nil)
		for _, c := range []struct {
			tpl  channel.Template
			want string
		}{
			{channel.Template{Name: "order_update", Language: "ru", Params: []string{"Ерлан", "A-4513"}}, "Здравствуйте, Ерлан! Заказ A-4513 передан в доставку."},
			// Another language of the same name is another template.
			{channel.Template{Name: "order_update", Language: "en", Params: []string{"Ann"}}, "[template order_update/en] Ann"},
		} {
			m, err := s.Send(ctx, store.Scope{WorkspaceID: ws.ID}, ch.ID, SendRequest{To: "+79160000001", Template: &c.tpl})
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.GetMessage(ctx, store.All, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != c.want {
				t.Errorf("%s/%s stored as %q, want %q", c.tpl.Name, c.tpl.Language, got.Text, c.want)
			}
		}
	})
}
