package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// unboundSay stores a message of the customer on ch (in: the customer's,
// else an answer) and returns the customer's contact id.
func unboundSay(t *testing.T, st *store.Store, ch *store.Channel, customer string, in bool, typ channel.MsgType) string {
	t.Helper()
	var id string
	err := st.Tx(context.Background(), func(tx *gorm.DB) error {
		m := &store.Message{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, Direction: store.Inbound, Type: string(typ), Status: "received"}
		if !in {
			m.Direction, m.Status = store.Outbound, "queued"
		}
		ct, _, err := store.UpsertContactWithMessage(tx, ch, channel.Customer{ExternalID: customer, Name: "c" + customer}, nil, m)
		if err == nil {
			id = ct.ID
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A channel bound to no CRM keeps no dialogs, yet its customers are
// listed with what waits since the last answer; a bound channel's
// customers are not (their dialogs are), nor is another workspace's.
func TestUnboundConversations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		free := newDialogFixture(t, st, ws.ID, "free", "m1").ch
		bound := newDialogFixture(t, st, ws.ID, "bound", "m2")
		if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: bound.in.ID, ChannelID: bound.ch.ID, Mode: "crm"}); err != nil {
			t.Fatal(err)
		}
		other, err := st.CreateWorkspace(ctx, "other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		foreign := newDialogFixture(t, st, other.ID, "foreign", "m3").ch

		// Анна wrote, was answered, then wrote twice (a reaction first,
		// which asks nothing); Борис was answered last; Вера wrote on
		// the bound channel; Глеб in another workspace.
		anna := unboundSay(t, st, free, "7001", true, channel.MsgText)
		unboundSay(t, st, free, "7001", false, channel.MsgText)
		boris := unboundSay(t, st, free, "7002", true, channel.MsgText)
		unboundSay(t, st, free, "7001", true, channel.MsgReaction)
		unboundSay(t, st, free, "7001", true, channel.MsgText)
		unboundSay(t, st, free, "7002", false, channel.MsgText)
		vera := unboundSay(t, st, bound.ch, "7003", true, channel.MsgText)
		gleb := unboundSay(t, st, foreign, "7004", true, channel.MsgText)

		got, err := st.UnboundConversations(ctx, ws.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != boris || got[1].ID != anna {
			t.Fatalf("conversations %+v, want Борис then Анна", got)
		}
		b, a := got[0], got[1]
		if b.Waiting || b.UnreadCount != 0 || b.IntegrationID != "" || b.Contact == nil || b.Contact.ExternalID != "7002" {
			t.Errorf("Борис (answered last): %+v", b)
		}
		if !a.Waiting || a.UnreadCount != 2 || a.WaitingSince == nil || a.ChannelID != free.ID || a.UnreadCount < 0 {
			t.Errorf("Анна (two since the answer, the reaction asks nothing): %+v", a)
		}
		if !a.WaitingSince.Equal(a.LastMessageAt) {
			t.Errorf("Анна waits since %v, want her last message (%v): the reaction before it asks nothing", a.WaitingSince, a.LastMessageAt)
		}
		if got, err := st.UnboundConversations(ctx, ws.ID, 1); err != nil || len(got) != 1 || got[0].ID != boris {
			t.Errorf("limit 1: %+v %v", got, err)
		}

		if one, err := st.UnboundConversation(ctx, ws.ID, anna); err != nil || one.ID != anna || one.UnreadCount != 2 {
			t.Errorf("Анна alone: %+v %v", one, err)
		}
		for name, id := range map[string]string{"bound channel's": vera, "other workspace's": gleb} {
			if _, err := st.UnboundConversation(ctx, ws.ID, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the %s customer: %v, want not found", name, err)
			}
		}
		if got, err := st.UnboundConversations(ctx, other.ID, 10); err != nil || len(got) != 1 || got[0].ID != gleb {
			t.Errorf("the other workspace sees %+v %v, want Глеб only", got, err)
		}
	})
}

// Backdating a customer's last message (the demo's "close the 24-hour
// window") touches that message, so that the open chats' event stream
// tells them to look again; it changes nothing else of it.
func TestBackdateTouchesTheLatestMessage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		ch := newDialogFixture(t, st, ws.ID, "free", "m1").ch
		anna := unboundSay(t, st, ch, "7001", true, channel.MsgText)
		before, err := st.ListContactMessages(ctx, anna, 10)
		if err != nil || len(before) != 1 {
			t.Fatal(before, err)
		}
		since := before[0].UpdatedAt
		at := store.Now().Add(-25 * time.Hour)
		if err := st.BackdateContactInbound(ctx, ch.ID, "7001", at); err != nil {
			t.Fatal(err)
		}
		changed, err := st.MessagesChangedSince(ctx, since, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != 1 || changed[0].ID != before[0].ID || changed[0].ContactID != anna {
			t.Fatalf("changes after the backdate: %+v, want Анна's message", changed)
		}
		after, err := st.ListContactMessages(ctx, anna, 10)
		if err != nil || after[0].Status != before[0].Status || !after[0].CreatedAt.Equal(before[0].CreatedAt) {
			t.Fatalf("the message changed: %+v %v", after, err)
		}
	})
}
