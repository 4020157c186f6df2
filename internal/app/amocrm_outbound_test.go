package app_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// amoReply is our answer to the fixtures' customer: by an amoCRM user
// (through SendAsManager, as the card window and amojo send) when user is
// set, else through the API as the cabinet does.
func amoReply(t *testing.T, e *apptest.Env, integrationID, ch, user, text string) {
	t.Helper()
	if user == "" {
		if st, v := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": "79123456789", "text": text}); st != http.StatusAccepted && st != http.StatusOK && st != http.StatusCreated {
			t.Fatalf("API send: %d %v", st, v)
		}
		return
	}
	in, _ := storedAmo(t, e, integrationID)
	if _, err := e.App.AmoCRM.SendAsManager(context.Background(), in, user, ch, messaging.SendRequest{To: "79123456789", Text: text}, nil); err != nil {
		t.Fatal(err)
	}
}

// inOrder says whether text holds the parts in this order.
func inOrder(text string, parts ...string) bool {
	at := 0
	for _, p := range parts {
		i := strings.Index(text[at:], p)
		if i < 0 {
			return false
		}
		at += i + len(p)
	}
	return true
}

// TestAmoCRMOutboundNotes: our messages to a bound customer are noted with
// the customer's, in order, named as the manager's or Switchboard's: in
// each mode one note per message; hourly and daily put the manager's reply
// in the window's note; none writes nothing; a message longer than a note
// is split.
func TestAmoCRMOutboundNotes(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		bind := map[string]any{"mode": "crm"}
		id, _, ch := amoBound(t, e, bind)

		// each
		amoSend(t, e, "79123456789", "Анна", "Когда доставка?")
		e.Eventually("lead", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		lead := e.Amo.Leads(amoAccount)[0].ID
		amoReply(t, e, id, ch, "9000002", "Завтра до обеда")
		amoReply(t, e, id, ch, "", "Курьер позвонит заранее")
		amoSend(t, e, "79123456789", "Анна", "Спасибо")
		e.Eventually("four notes", func() bool { return len(amoNotesOn(e, lead)) == 4 })
		e.WaitIdle()
		notes := amoNotesOn(e, lead)
		want := []struct{ author, text string }{{"Анна", "Когда доставка?"}, {"Менеджер Иван Менеджеров", "Завтра до обеда"},
			{"Switchboard", "Курьер позвонит заранее"}, {"Анна", "Спасибо"}}
		if len(notes) != len(want) {
			t.Fatalf("notes %q", notes)
		}
		for i, w := range want {
			if !strings.Contains(notes[i], "WhatsApp · "+w.author+" · ") || !strings.Contains(notes[i], w.text) {
				t.Fatalf("note %d is %q, want %s: %s", i, notes[i], w.author, w.text)
			}
		}

		// A customer's message longer than a note: two notes, all of it.
		long := strings.Repeat("очень длинное сообщение ", 190) // 4,560 characters
		amoSend(t, e, "79123456789", "Анна", long)
		e.Eventually("the long message's notes", func() bool { return len(amoNotesOn(e, lead)) == 6 })
		e.WaitIdle()
		notes = amoNotesOn(e, lead)
		if len(notes) != 6 || len([]rune(notes[4])) > 4000 || strings.Count(notes[4]+notes[5], "очень длинное сообщение") != 190 {
			t.Fatalf("long message split into %d notes of %d and %d characters", len(notes)-4, len([]rune(notes[4])), len([]rune(notes[len(notes)-1])))
		}

		// hourly and daily: the window's note holds both sides in order.
		for i, mode := range []string{"hourly", "daily"} {
			bind["mirror"] = mode
			if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, bind); st != http.StatusOK {
				t.Fatalf("rebind %s: %d %v", mode, st, v)
			}
			q, a := "Вопрос "+mode, "Ответ "+mode
			amoSend(t, e, "79123456789", "Анна", q)
			amoReply(t, e, id, ch, "9000002", a)
			amoReply(t, e, id, ch, "", "Автоответ "+mode)
			e.WaitIdle()
			if n := len(amoNotesOn(e, lead)); n != 6+i {
				t.Fatalf("%s: %d notes before the window closed", mode, n)
			}
			if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK || v["messages"] != float64(3) {
				t.Fatalf("%s flush: %d %v", mode, st, v)
			}
			e.Eventually(mode+" note", func() bool { return len(amoNotesOn(e, lead)) == 7+i })
			n := amoNotesOn(e, lead)[6+i]
			if !inOrder(n, "Переписка", "Анна:\n"+q, "Менеджер Иван Менеджеров:\n"+a, "Switchboard:\nАвтоответ "+mode) {
				t.Fatalf("%s note:\n%s", mode, n)
			}
		}

		// none: nothing of either side.
		bind["mirror"] = "none"
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, bind); st != http.StatusOK {
			t.Fatalf("rebind none: %d %v", st, v)
		}
		amoSend(t, e, "79123456789", "Анна", "Вопрос none")
		amoReply(t, e, id, ch, "9000002", "Ответ none")
		e.WaitIdle()
		if st, _ := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK {
			t.Fatalf("flush none: %d", st)
		}
		e.WaitIdle()
		if n := len(amoNotesOn(e, lead)); n != 8 {
			t.Fatalf("none mode wrote: %d notes", n)
		}
	})
}

// TestAmoCRMEnsureRecordHourly: in hourly mode a customer's contact and
// lead are made at once, before the window closes, and only once. The
// connector's EnsureRecord alone (for a customer we wrote to first, whom
// no notice concerns) makes them; run again, as a retried job runs, it
// writes nothing. End to end, a first message makes the lead before the
// flush and a repeat makes no second one.
func TestAmoCRMEnsureRecordHourly(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		id, _, ch := amoBound(t, e, map[string]any{"mode": "crm", "mirror": "hourly", "category_id": amoMain, "stage_id": amoFirstOpen})
		// We write first (a template): the customer exists, without a lead.
		if st, v := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": "79160001122",
			"template": map[string]any{"name": "order_update", "language": "ru", "params": []string{"Борис", "4513"}}}); st >= 300 {
			t.Fatalf("template: %d %v", st, v)
		}
		e.WaitIdle()
		if n := len(e.Amo.Leads(amoAccount)); n != 0 {
			t.Fatalf("%d leads before any record was asked for", n)
		}
		in, _ := storedAmo(t, e, id)
		b, err := e.App.Store.BindingOf(ctx, id, ch)
		if err != nil {
			t.Fatal(err)
		}
		chRow, err := e.App.Store.GetChannel(ctx, store.All, ch)
		if err != nil {
			t.Fatal(err)
		}
		var ct store.Contact
		if err := e.App.DB.Gorm.Where("phone = ?", "+79160001122").First(&ct).Error; err != nil {
			t.Fatal(err)
		}
		d := &routing.Delivery{Integration: in, Binding: b, Channel: chRow, Contact: &ct}
		if err := e.App.AmoCRM.EnsureRecord(ctx, d, &ct); err != nil {
			t.Fatal(err)
		}
		ls, cs := e.Amo.Leads(amoAccount), e.Amo.Contacts(amoAccount)
		if len(ls) != 1 || len(cs) != 1 || ls[0].StatusID != 61000002 || len(ls[0].ContactIDs) != 1 || len(e.Amo.Notes(amoAccount)) != 0 {
			t.Fatalf("after EnsureRecord: leads %+v contacts %d notes %d", ls, len(cs), len(e.Amo.Notes(amoAccount)))
		}
		var entity string
		if err := e.App.DB.Gorm.Table("dialogs").Select("crm_entity_id").Where("integration_id = ? AND contact_id = ?", id, ct.ID).Scan(&entity).Error; err != nil || entity != strconv.Itoa(ls[0].ID) {
			t.Fatalf("dialog record %q %v, want %d", entity, err, ls[0].ID)
		}
		before := e.Amo.Counts(amoAccount).ByRoute
		if err := e.App.AmoCRM.EnsureRecord(ctx, d, &ct); err != nil {
			t.Fatal(err)
		}
		after := e.Amo.Counts(amoAccount).ByRoute
		if len(e.Amo.Leads(amoAccount)) != 1 || after["POST /api/v4/leads/complex"] != before["POST /api/v4/leads/complex"] ||
			after["POST /api/v4/contacts"] != before["POST /api/v4/contacts"] {
			t.Fatalf("a repeat wrote: %d leads, calls %v → %v", len(e.Amo.Leads(amoAccount)), before, after)
		}

		// End to end: a first message makes the lead before the flush.
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		e.Eventually("Anna's lead before the window closes", func() bool { return len(e.Amo.Leads(amoAccount)) == 2 })
		amoSend(t, e, "79123456789", "Анна", "Вы тут?")
		e.WaitIdle()
		if len(e.Amo.Leads(amoAccount)) != 2 || len(e.Amo.Contacts(amoAccount)) != 2 || len(e.Amo.Notes(amoAccount)) != 0 {
			t.Fatalf("after a repeat: %d leads, %d contacts, %d notes", len(e.Amo.Leads(amoAccount)), len(e.Amo.Contacts(amoAccount)), len(e.Amo.Notes(amoAccount)))
		}
	})
}
