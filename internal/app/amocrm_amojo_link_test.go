package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// amojoChatsCreated counts the chats created in advance that amojo
// answered 200.
func amojoChatsCreated(e *apptest.Env) int {
	n := 0
	for _, r := range e.Amo.Requests() {
		if r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/v2/origin/custom/") && strings.HasSuffix(r.Path, "/chats") && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// TestAmojoOneLeadPerCustomer: a new customer's first message makes ONE
// lead and ONE contact in amoCRM, ours (in the binding's status), because
// the chat is created in advance and linked to our contact before the
// message goes into it; amoCRM's own incoming lead never appears. The
// chat is created and linked once, not at every message.
func TestAmojoOneLeadPerCustomer(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"})
		amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна Смирнова", "Здравствуйте")
		amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()
		ls, cs := e.Amo.Leads(amoAccount), e.Amo.Contacts(amoAccount)
		if len(ls) != 1 || len(cs) != 1 {
			t.Fatalf("%d leads %+v and %d contacts %+v, want one of each", len(ls), ls, len(cs), cs)
		}
		if l := ls[0]; l.PipelineID != 7000001 || l.StatusID != 61000003 || len(l.ContactIDs) != 1 || l.ContactIDs[0] != cs[0].ID {
			t.Fatalf("lead %+v", l)
		}
		c := e.Amo.Chats(amoAccount)[0]
		if c.ContactID != cs[0].ID || c.LinkID == 0 || c.LeadID != 0 || c.Messages[0].Text != "Здравствуйте" || c.Phone != "+79123456789" {
			t.Fatalf("chat %+v (contact %d)", c, cs[0].ID)
		}

		amoSend(t, e, "79123456789", "Анна Смирнова", "Вы тут?")
		amojoChat(t, e, amoAccount, 2)
		e.WaitIdle()
		if ls := e.Amo.Leads(amoAccount); len(ls) != 1 {
			t.Fatalf("leads after the second message %+v", ls)
		}
		if n, made := e.Amo.Counts(amoAccount).ByRoute["POST /api/v4/contacts/chats"], amojoChatsCreated(e); n != 1 || made != 1 {
			t.Fatalf("%d links and %d chats created, want one of each", n, made)
		}
	})
}

// TestAmojoContactNeverComes: when our lead cannot be made (amoCRM
// answers 503 to leads/complex while amojo works), the customer's message
// waits for the contact only as long as configured, then goes into the
// chat unlinked: amoCRM makes its incoming lead, and nothing is lost.
// When amoCRM takes our lead again, the chat is linked to our contact at
// the next message.
func TestAmojoContactNeverComes(t *testing.T) {
	opts := amojoOpts
	opts.Config = func(c *config.Config) { c.AmoCRMChatContactWait = 3 * time.Second }
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"})
		amojoConnected(t, e, amoAccount)
		e.Amo.FailRoute("POST /api/v4/leads/complex", http.StatusServiceUnavailable, 1000)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		c := amojoChat(t, e, amoAccount, 1)
		ls := e.Amo.Leads(amoAccount)
		if len(ls) != 1 || ls[0].StatusID != 61000001 || c.LeadID != ls[0].ID || c.LinkID != 0 || c.Messages[0].Text != "Здравствуйте" {
			t.Fatalf("chat %+v, leads %+v: want the message in the chat with amoCRM's incoming lead", c, ls)
		}
		if n := e.Amo.Counts(amoAccount).ByRoute["POST /api/v4/contacts/chats"]; n != 0 {
			t.Fatalf("%d links without our contact", n)
		}

		e.Amo.FailRoute("POST /api/v4/leads/complex", 0, 0)
		var ours amosim.Lead
		e.Eventually("our lead, retried", func() bool {
			for _, l := range e.Amo.Leads(amoAccount) {
				if l.StatusID == 61000003 {
					ours = l
					return true
				}
			}
			return false
		})
		amoSend(t, e, "79123456789", "Анна", "Алло")
		c = amojoChat(t, e, amoAccount, 2)
		e.WaitIdle()
		if c = e.Amo.Chats(amoAccount)[0]; c.LinkID == 0 || c.ContactID != ours.ContactIDs[0] || len(e.Amo.Leads(amoAccount)) != 2 {
			t.Fatalf("chat %+v, our lead %+v", c, ours)
		}
	})
}

// TestAmojoLinkRefused: amoCRM refusing the link (a 400: say the contact
// was deleted there) does not hold the message: it goes into the chat
// unlinked at once (amoCRM adds its incoming lead), and the link is not
// asked again at the next message.
func TestAmojoLinkRefused(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"})
		amojoConnected(t, e, amoAccount)
		e.Amo.FailRoute("POST /api/v4/contacts/chats", http.StatusBadRequest, 1)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		c := amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()
		if c = e.Amo.Chats(amoAccount)[0]; c.LinkID != 0 || c.LeadID == 0 || len(e.Amo.Leads(amoAccount)) != 2 {
			t.Fatalf("chat %+v, leads %+v", c, e.Amo.Leads(amoAccount))
		}
		amoSend(t, e, "79123456789", "Анна", "Алло")
		amojoChat(t, e, amoAccount, 2)
		e.WaitIdle()
		if n := e.Amo.Counts(amoAccount).ByRoute["POST /api/v4/contacts/chats"]; n != 1 {
			t.Fatalf("%d link calls, want the refused one only", n)
		}
	})
}

// TestAmojoContactDeleted: the customer's chat was linked to our contact,
// which a user then deleted (with the lead). The mirror job makes a new
// contact with the new lead, and the chat is linked to that contact by
// the next message at the latest (amoCRM moves a linked chat).
func TestAmojoContactDeleted(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"})
		amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()
		old, oldContact := e.Amo.Leads(amoAccount)[0], e.Amo.Contacts(amoAccount)[0]
		if !e.Amo.DeleteLead(amoAccount, old.ID) || !e.Amo.DeleteContact(amoAccount, oldContact.ID) {
			t.Fatal("delete in amosim")
		}
		amoSend(t, e, "79123456789", "Анна", "Вы где?")
		amojoChat(t, e, amoAccount, 2)
		e.WaitIdle()
		amoSend(t, e, "79123456789", "Анна", "Алло")
		amojoChat(t, e, amoAccount, 3)
		e.WaitIdle()
		var ours *amosim.Lead
		for _, l := range e.Amo.Leads(amoAccount) {
			if l.PipelineID == 7000001 && l.StatusID == 61000003 {
				ours = &l
			}
		}
		if ours == nil || ours.ID == old.ID || len(ours.ContactIDs) != 1 || ours.ContactIDs[0] == oldContact.ID {
			t.Fatalf("our new lead %+v among %+v", ours, e.Amo.Leads(amoAccount))
		}
		if c := e.Amo.Chats(amoAccount)[0]; c.ContactID != ours.ContactIDs[0] || c.LinkID == 0 {
			t.Fatalf("chat %+v, our contact %d", c, ours.ContactIDs[0])
		}
		if js := jobsOf(t, e, routing.JobMirror); len(js) != 0 {
			t.Fatalf("jobs left %+v", js)
		}
	})
}
