package amocrm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/switchboard/switchboard/internal/crm/amocrm"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// A chat created in advance keeps its id for its conversation; linked to a
// contact through the API it is listed on the contact; a link naming a
// chat or contact the account lacks is a validation error that names the
// field.
func TestCreateAndLinkChat(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.install()
	ctx := context.Background()
	acc, err := e.api.Account(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aj := &amocrm.AmojoClient{ChannelID: channelID, Secret: channelSec, BaseURL: e.srv.URL, Now: e.clk.Now}
	conn, err := aj.Connect(ctx, acc.AmojoID, "Switchboard")
	if err != nil {
		t.Fatal(err)
	}
	user := amocrm.AmojoSender{ID: "c-1", Name: "Мария", Profile: &amocrm.AmojoProfile{Phone: "+79161234567"}}
	chat, err := aj.CreateChat(ctx, conn.ScopeID, "c-1", user)
	if err != nil || chat.ID == "" || chat.User.ClientID != "c-1" {
		t.Fatalf("create: %+v %v", chat, err)
	}
	again, err := aj.CreateChat(ctx, conn.ScopeID, "c-1", user)
	if err != nil || again.ID != chat.ID {
		t.Fatalf("created again: %+v %v", again, err)
	}
	contact := e.sim.PutContact(acct, amosim.Contact{Name: "Мария"})
	_, err = e.api.LinkChats(ctx, []amocrm.ChatLink{{ChatID: "not-a-chat", ContactID: contact}})
	if fe := amocrm.ItemErrors(err)["0"]; !errors.Is(err, amocrm.ErrValidation) || len(fe) != 1 || fe[0].Path != "chat_id" || fe[0].Code != "NotFound" {
		t.Fatalf("unknown chat: %v %+v", err, fe)
	}
	links, err := e.api.LinkChats(ctx, []amocrm.ChatLink{{ChatID: chat.ID, ContactID: contact}})
	if err != nil || len(links) != 1 || links[0].ID == 0 || links[0].ContactID != contact || links[0].ChatID != chat.ID {
		t.Fatalf("link: %+v %v", links, err)
	}
	listed, err := e.api.ContactChats(ctx, contact)
	if err != nil || len(listed) != 1 || listed[0].ChatID != chat.ID || listed[0].ID != links[0].ID {
		t.Fatalf("listed: %+v %v", listed, err)
	}
	if none, err := e.api.ContactChats(ctx, contact+1000); err != nil || len(none) != 0 {
		t.Fatalf("another contact's chats: %+v %v", none, err)
	}
}
