package store_test

import (
	"bytes"
	"context"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// A contact's history names who wrote each outbound message, and an
// author row naming another workspace (a forged or misfiled one) never
// shows: one workspace's people are never named in another's chat.
func TestContactMessagesNameTheirAuthor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
		st := store.New(db, box)
		ch := newChannel(t, st)
		other, err := st.CreateWorkspace(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		var contactID string
		out := func(author *store.MessageAuthor) string {
			m := &store.Message{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, Direction: store.Outbound, Type: "text", Text: "x", Status: "queued"}
			err := st.Tx(ctx, func(tx *gorm.DB) error {
				ct, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79161234567"}, nil)
				if err != nil {
					return err
				}
				m.ContactID, contactID = ct.ID, ct.ID
				if _, err := store.InsertMessage(tx, m); err != nil {
					return err
				}
				if author == nil {
					return nil
				}
				author.MessageID = m.ID
				return store.InsertMessageAuthor(tx, author)
			})
			if err != nil {
				t.Fatal(err)
			}
			return m.ID
		}
		own := out(&store.MessageAuthor{WorkspaceID: ch.WorkspaceID, Kind: store.AuthorCabinet, UserID: "u1", Name: "Анна Петрова"})
		foreign := out(&store.MessageAuthor{WorkspaceID: other.ID, Kind: store.AuthorCabinet, UserID: "u2", Name: "Чужой Сотрудник"})
		none := out(nil)
		vs, err := st.ListContactMessages(ctx, contactID, 10)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, v := range vs {
			if v.Author != nil {
				got[v.ID] = v.Author.Name
			}
		}
		if got[own] != "Анна Петрова" || len(got) != 1 {
			t.Fatalf("authors: %v (own %s, foreign %s, none %s)", got, own, foreign, none)
		}
		if a, err := st.MessageAuthorOf(ctx, ch.WorkspaceID, foreign); err != nil || a != nil {
			t.Fatalf("the foreign author by the message's workspace: %+v %v", a, err)
		}
		if a, err := st.MessageAuthorOf(ctx, ch.WorkspaceID, own); err != nil || a == nil || a.Kind != store.AuthorCabinet {
			t.Fatalf("the own author: %+v %v", a, err)
		}
	})
}
