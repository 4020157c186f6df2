package amosim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// signed sends a signed amojo request with the simulator's clock.
func (e *env) signed(method, path string, body []byte) (int, []byte) {
	e.t.Helper()
	date := e.clk.Now().Format(AmojoDateFormat)
	md := AmojoContentMD5(body)
	return e.amojo(method, path, date, md, AmojoSignature(fxChannelSec, method, md, "application/json", date, path), body)
}

func (e *env) newMessage(conv, msgid, text string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"event_type": "new_message", "payload": map[string]any{
		"timestamp": 1767268800, "msec_timestamp": 1767268800000, "msgid": msgid, "conversation_id": conv,
		"sender":  map[string]any{"id": "client-" + conv, "name": "Клиент " + conv, "profile": map[string]any{"phone": "+7916000" + conv}},
		"message": map[string]any{"type": "text", "text": text}}})
	if st, b := e.signed("POST", "/v2/origin/custom/"+fxScope, body); st != 200 {
		e.t.Fatalf("new message: %d %s", st, b)
	}
}

// A chat created in advance is the same chat on every call; linked to a
// contact before its first message, it makes no lead; a chat linked to
// nobody gets amoCRM's incoming lead and contact at its first message
// only. Links to chats or contacts the account does not have are refused
// whole, changing nothing.
func TestChatsCreateLinkAndIncomingLead(t *testing.T) {
	e := newEnv(t, Options{Rate: -1})
	e.clk.Add(5 * time.Second)
	if st, b := e.signed("POST", "/v2/origin/custom/"+fxChannelID+"/connect", []byte(`{"account_id":"`+ExampleAccount().AmojoID+`","title":"t","hook_api_version":"v2","is_time_window_disabled":false}`)); st != 200 {
		t.Fatalf("connect: %d %s", st, b)
	}
	create := []byte(`{"conversation_id":"1111","user":{"id":"client-1111","name":"Анна","profile":{"phone":"+79160001111"}}}`)
	st, b := e.signed("POST", "/v2/origin/custom/"+fxScope+"/chats", create)
	var first struct {
		ID   string
		User struct {
			ID       string
			ClientID string `json:"client_id"`
		}
	}
	if json.Unmarshal(b, &first); st != 200 || first.ID == "" || first.User.ClientID != "client-1111" {
		t.Fatalf("create: %d %s", st, b)
	}
	if _, b := e.signed("POST", "/v2/origin/custom/"+fxScope+"/chats", create); !strings.Contains(string(b), `"id":"`+first.ID+`"`) {
		t.Fatalf("created again: %s", b)
	}
	if st, _ := e.signed("POST", "/v2/origin/custom/"+fxScope+"/chats", []byte(`{"conversation_id":"x","user":{"id":""}}`)); st != 400 {
		t.Fatalf("chat without user: %d", st)
	}
	if st, _ := e.signed("POST", "/v2/origin/custom/"+fxChannelID+"_nobody/chats", create); st != 404 {
		t.Fatalf("chat of an unknown scope: %d", st)
	}

	tok, _ := e.token()
	contact := e.sim.PutContact(fxAccount, Contact{Name: "Анна"})
	link := func(body string) (int, []byte) {
		st, _, b := e.do("POST", "/api/v4/contacts/chats", tok, "application/json", []byte(body))
		return st, b
	}
	for _, bad := range []string{
		`[{"chat_id":"no-such-chat","contact_id":` + itoa(contact) + `}]`,
		`[{"chat_id":"` + first.ID + `","contact_id":999}]`,
		`[{"chat_id":"` + first.ID + `","contact_id":"` + itoa(contact) + `"}]`,
		`[{"chat_id":"` + first.ID + `"}]`,
		`{"chat_id":"` + first.ID + `","contact_id":` + itoa(contact) + `}`,
	} {
		if st, b := link(bad); st != 400 || !strings.Contains(string(b), "Bad Request") {
			t.Fatalf("link %s: %d %s", bad, st, b)
		}
	}
	if c := e.sim.Chats(fxAccount); c[0].ContactID != 0 || c[0].LinkID != 0 {
		t.Fatalf("a refused link linked: %+v", c[0])
	}
	if st, _, _ := e.do("GET", "/api/v4/contacts/chats?contact_id="+itoa(contact), tok, "", nil); st != 204 {
		t.Fatalf("links before linking: %d", st)
	}
	st, b = link(`[{"chat_id":"` + first.ID + `","contact_id":` + itoa(contact) + `}]`)
	var linked struct {
		Embedded struct {
			Chats []struct {
				ChatID    string `json:"chat_id"`
				ContactID int    `json:"contact_id"`
				ID        int
				RequestID string `json:"request_id"`
			}
		} `json:"_embedded"`
	}
	if json.Unmarshal(b, &linked); st != 200 || len(linked.Embedded.Chats) != 1 || linked.Embedded.Chats[0].ContactID != contact ||
		linked.Embedded.Chats[0].ID == 0 || linked.Embedded.Chats[0].RequestID != "0" {
		t.Fatalf("link: %d %s", st, b)
	}
	if st, _, b := e.do("GET", "/api/v4/contacts/chats?contact_id="+itoa(contact), tok, "", nil); st != 200 || !strings.Contains(string(b), first.ID) {
		t.Fatalf("links: %d %s", st, b)
	}
	if st, _, _ := e.do("GET", "/api/v4/contacts/chats", tok, "", nil); st != 400 {
		t.Fatalf("links without a filter: %d", st)
	}

	// The linked chat's messages: no lead. An unlinked chat's first
	// message: one incoming lead in the unsorted status, and no more.
	e.newMessage("1111", "m1", "Здравствуйте")
	if ls := e.sim.Leads(fxAccount); len(ls) != 0 {
		t.Fatalf("a linked chat made leads %+v", ls)
	}
	e.newMessage("2222", "m2", "Добрый день")
	e.newMessage("2222", "m3", "Есть кто?")
	ls, cs := e.sim.Leads(fxAccount), e.sim.Contacts(fxAccount)
	if len(ls) != 1 || ls[0].StatusID != 61000001 || ls[0].PipelineID != 7000001 || len(cs) != 2 {
		t.Fatalf("leads %+v contacts %+v", ls, cs)
	}
	chats := e.sim.Chats(fxAccount)
	if chats[0].ContactID != contact || chats[0].LeadID != 0 || chats[1].LeadID != ls[0].ID || chats[1].ContactID != ls[0].ContactIDs[0] || chats[1].LinkID != 0 {
		t.Fatalf("chats %+v", chats)
	}
	if c := cs[1]; c.Name != "Клиент 2222" || len(c.Phones) != 1 || c.Phones[0].Value != "+79160002222" {
		t.Fatalf("amoCRM's contact %+v", c)
	}
}
