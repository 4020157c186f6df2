package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// amoBound installs the fixtures' account and binds a new WhatsApp
// channel with body; it returns the integration, workspace and channel.
func amoBound(t *testing.T, e *apptest.Env, bind map[string]any) (string, string, string) {
	t.Helper()
	addAmoAccount(t, e)
	id, ws := installAmoWidget(t, e)
	ch := createWAIn(t, e, ws)
	if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, bind); st != http.StatusOK {
		t.Fatalf("bind %v: %d %v", bind, st, v)
	}
	return id, ws, ch
}

// amoNotesOn are the texts of a lead's notes, oldest first.
func amoNotesOn(e *apptest.Env, lead int) []string {
	var out []string
	for _, n := range e.Amo.Notes(amoAccount) {
		if n.EntityType == "leads" && n.EntityID == lead {
			out = append(out, n.Text())
		}
	}
	return out
}

func amoSend(t *testing.T, e *apptest.Env, from, name, text string) {
	t.Helper()
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, from, name, text); err != nil {
		t.Fatal(err)
	}
}

// TestAmoCRMLeadsAndNotes: a new customer's message makes one contact and
// one lead (in the bound status, on the round-robin's manager, tagged with
// the channel) and a note; the next message is a note on the same lead;
// an existing contact written "8 (916) 000-11-22" is reused under the
// workspace's 8→+7 rule and not without it; a closed lead is written into
// under on_repeat last_closed and replaced under "new".
func TestAmoCRMLeadsAndNotes(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		bind := map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003",
			"owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "9000001", "weight": 1}, {"user_id": "9000002", "weight": 3}}}}
		id, ws, ch := amoBound(t, e, bind)

		amoSend(t, e, "79123456789", "Анна Смирнова", "Здравствуйте, нужна доставка")
		e.Eventually("lead, contact and note", func() bool {
			return len(e.Amo.Leads(amoAccount)) == 1 && len(e.Amo.Notes(amoAccount)) == 1
		})
		cs, ls := e.Amo.Contacts(amoAccount), e.Amo.Leads(amoAccount)
		if len(cs) != 1 || len(cs[0].Phones) != 1 || cs[0].Phones[0].Value != "+79123456789" || cs[0].Name != "Анна Смирнова" {
			t.Fatalf("contact %+v", cs)
		}
		lead := ls[0]
		if lead.PipelineID != 7000001 || lead.StatusID != 61000003 || lead.ResponsibleUserID != 9000002 ||
			!slices.Contains(lead.Tags, "WhatsApp") || !slices.Equal(lead.ContactIDs, []int{cs[0].ID}) || cs[0].ResponsibleUserID != 9000002 {
			t.Fatalf("lead %+v (contact %d)", lead, cs[0].ID)
		}
		n := e.Amo.Notes(amoAccount)[0]
		if n.NoteType != "common" || n.EntityID != lead.ID || !strings.Contains(n.Text(), "Здравствуйте, нужна доставка") ||
			!strings.Contains(n.Text(), "WhatsApp · Анна Смирнова") {
			t.Fatalf("note %+v", n)
		}
		// The dialog knows its lead and owner.
		e.Eventually("dialog linked", func() bool {
			_, v := e.Do("GET", "/api/v1/dialogs?channel_id="+ch, nil)
			return strings.Contains(fmt.Sprint(v), strconv.Itoa(lead.ID)) && strings.Contains(fmt.Sprint(v), "9000002")
		})

		amoSend(t, e, "79123456789", "Анна Смирнова", "И ещё вопрос")
		e.Eventually("second note", func() bool { return len(amoNotesOn(e, lead.ID)) == 2 })
		if len(e.Amo.Leads(amoAccount)) != 1 || len(e.Amo.Contacts(amoAccount)) != 1 {
			t.Fatal("a second message made a second lead or contact")
		}

		// An existing contact with the number written the Russian way.
		boris := e.Amo.PutContact(amoAccount, amosim.Contact{Name: "Борис", Phones: []amosim.Value{{Value: "8 (916) 000-11-22", EnumCode: "WORK"}}})
		amoSend(t, e, "79160001122", "Boris", "Добрый день")
		e.Eventually("Boris's lead", func() bool { return len(e.Amo.Leads(amoAccount)) == 2 })
		if l := e.Amo.Leads(amoAccount)[1]; !slices.Equal(l.ContactIDs, []int{boris}) || len(e.Amo.Contacts(amoAccount)) != 2 {
			t.Fatalf("existing contact not reused: lead %+v, %d contacts", l, len(e.Amo.Contacts(amoAccount)))
		}
		// Without the 8→+7 switch "8 (916) 000-11-23" is not that number.
		if st, _ := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"phone_trunk8": false}); st != http.StatusOK {
			t.Fatalf("workspace: %d", st)
		}
		vera := e.Amo.PutContact(amoAccount, amosim.Contact{Name: "Вера", Phones: []amosim.Value{{Value: "8 (916) 000-11-23", EnumCode: "WORK"}}})
		amoSend(t, e, "79160001123", "Вера", "Здравствуйте")
		e.Eventually("Vera's lead", func() bool { return len(e.Amo.Leads(amoAccount)) == 3 })
		if l := e.Amo.Leads(amoAccount)[2]; len(l.ContactIDs) != 1 || l.ContactIDs[0] == vera || len(e.Amo.Contacts(amoAccount)) != 4 {
			t.Fatalf("with the switch off the 8… contact was taken: lead %+v", l)
		}

		// Anna's lead won. last_closed (the default): written into it.
		e.Amo.SetLeadStatus(amoAccount, lead.ID, amosim.StatusWon)
		amoSend(t, e, "79123456789", "Анна Смирнова", "Спасибо, всё получила")
		e.Eventually("note on the closed lead", func() bool { return len(amoNotesOn(e, lead.ID)) == 3 })
		if len(e.Amo.Leads(amoAccount)) != 3 {
			t.Fatal("last_closed made a new lead")
		}
		// on_repeat new: a new lead, same contact, the same manager.
		bind["on_repeat"] = "new"
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, bind); st != http.StatusOK {
			t.Fatalf("rebind: %d %v", st, v)
		}
		amoSend(t, e, "79123456789", "Анна Смирнова", "Хочу ещё заказ")
		e.Eventually("a new lead for the repeat", func() bool { return len(e.Amo.Leads(amoAccount)) == 4 })
		nl := e.Amo.Leads(amoAccount)[3]
		if !slices.Equal(nl.ContactIDs, []int{cs[0].ID}) || nl.StatusID != 61000003 || nl.ResponsibleUserID != 9000002 || len(e.Amo.Contacts(amoAccount)) != 4 {
			t.Fatalf("repeat lead %+v", nl)
		}
		e.Eventually("its note", func() bool { return len(amoNotesOn(e, nl.ID)) == 1 })
		if len(amoNotesOn(e, lead.ID)) != 3 || !strings.Contains(amoNotesOn(e, nl.ID)[0], "Хочу ещё заказ") {
			t.Fatal("the repeat's message went to the closed lead")
		}
		// The open new lead is reused.
		amoSend(t, e, "79123456789", "Анна Смирнова", "И доставку")
		e.Eventually("note on the new lead", func() bool { return len(amoNotesOn(e, nl.ID)) == 2 })
		if len(e.Amo.Leads(amoAccount)) != 4 {
			t.Fatal("an open lead was not reused")
		}
	})
}

// TestAmoCRMHourlyNotes: in hourly mode nothing reaches amoCRM until the
// window closes; a flush writes one note with all three messages; a second
// flush writes nothing.
func TestAmoCRMHourlyNotes(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		id, _, _ := amoBound(t, e, map[string]any{"mode": "crm", "mirror": "hourly"})
		for _, text := range []string{"первое", "второе", "третье"} {
			amoSend(t, e, "79123456789", "Анна", text)
		}
		e.WaitIdle()
		if n := len(e.Amo.Notes(amoAccount)); n != 0 {
			t.Fatalf("%d notes before the window closed", n)
		}
		// The waiting customer's task made the lead at once; the notes
		// wait for the window.
		if ls, ts := e.Amo.Leads(amoAccount), e.Amo.Tasks(amoAccount); len(ls) != 1 || len(ts) != 1 || ts[0].EntityID != ls[0].ID {
			t.Fatalf("before the flush: leads %+v tasks %+v", ls, ts)
		}
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK || v["messages"] != float64(3) {
			t.Fatalf("flush: %d %v", st, v)
		}
		e.Eventually("one note", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		e.WaitIdle()
		notes := e.Amo.Notes(amoAccount)
		ls := e.Amo.Leads(amoAccount)
		if len(notes) != 1 || len(ls) != 1 || notes[0].EntityID != ls[0].ID {
			t.Fatalf("notes %+v leads %+v", notes, ls)
		}
		text := notes[0].Text()
		i1, i2, i3 := strings.Index(text, "первое"), strings.Index(text, "второе"), strings.Index(text, "третье")
		if i1 < 0 || i2 < i1 || i3 < i2 || !strings.Contains(text, "Сообщения клиента") || !strings.Contains(text, "#sb-") {
			t.Fatalf("batch note:\n%s", text)
		}
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK || v["messages"] != float64(0) {
			t.Fatalf("second flush: %d %v", st, v)
		}
		e.WaitIdle()
		if n := len(e.Amo.Notes(amoAccount)); n != 1 {
			t.Fatalf("%d notes after a second flush", n)
		}

		// amoCRM writes the next batch's note but its answer is lost: the
		// retry reads the lead's notes, finds the marker and writes nothing.
		e.Amo.FailAfterApply("POST /api/v4/leads/notes", 1)
		amoSend(t, e, "79123456789", "Анна", "четвёртое")
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK || v["messages"] != float64(1) {
			t.Fatalf("third flush: %d %v", st, v)
		}
		e.Eventually("the batch recorded as sent", func() bool { return mirroredCount(t, e) == 4 })
		e.WaitIdle()
		notes = e.Amo.Notes(amoAccount)
		if len(notes) != 2 || !strings.Contains(notes[1].Text(), "четвёртое") || e.Amo.Counts(amoAccount).ByRoute["GET /api/v4/leads/{id}/notes"] == 0 {
			t.Fatalf("after a lost answer: %d notes, counts %v", len(notes), e.Amo.Counts(amoAccount).ByRoute)
		}
	})
}

// TestAmoCRMUnansweredTask: a waiting customer becomes a follow-up task
// for the lead's responsible user, on the lead, due soon, worded in the
// account's language with the customer, the channel and an excerpt.
func TestAmoCRMUnansweredTask(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm",
			"owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "9000002", "weight": 1}}}})
		amoSend(t, e, "79123456789", "Анна Смирнова", "Когда будет доставка?")
		e.Eventually("a task", func() bool { return len(e.Amo.Tasks(amoAccount)) == 1 })
		e.WaitIdle()
		ts, ls := e.Amo.Tasks(amoAccount), e.Amo.Leads(amoAccount)
		if len(ts) != 1 || len(ls) != 1 {
			t.Fatalf("%d tasks, %d leads", len(ts), len(ls))
		}
		task := ts[0]
		if task.ResponsibleUserID != 9000002 || task.EntityType != "leads" || task.EntityID != ls[0].ID || task.TaskTypeID != 1 {
			t.Fatalf("task %+v (lead %d)", task, ls[0].ID)
		}
		due := time.Unix(task.CompleteTill, 0)
		if due.Before(time.Now()) || due.After(time.Now().Add(20*time.Minute)) {
			t.Fatalf("task due %v", due)
		}
		for _, want := range []string{"Анна Смирнова", "+79123456789", "Продажи", "Когда будет доставка?"} {
			if !strings.Contains(task.Text, want) {
				t.Fatalf("task text %q lacks %q", task.Text, want)
			}
		}
	})
}

// TestAmoCRMRateLimitStorm: an account allowing far fewer calls than the
// client makes answers 429 again and again; every message still arrives,
// each customer's in order.
func TestAmoCRMRateLimitStorm(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm"})
		// Installed without a limit; now two calls a second, no burst,
		// against the client's seven.
		e.Amo.SetRate(2, 1)
		const customers, each = 4, 4
		for i := 0; i < each; i++ {
			for c := 0; c < customers; c++ {
				amoSend(t, e, fmt.Sprintf("7916555000%d", c), fmt.Sprintf("Клиент %d", c), fmt.Sprintf("клиент %d сообщение %d", c, i))
			}
		}
		e.EventuallyWithin(3*time.Minute, "every message noted", func() bool { return len(e.Amo.Notes(amoAccount)) == customers*each })
		e.WaitIdle()
		if n := len(e.Amo.Notes(amoAccount)); n != customers*each {
			t.Fatalf("%d notes, want %d", n, customers*each)
		}
		if c := e.Amo.Counts(amoAccount); c.TooMany == 0 {
			t.Fatalf("no 429 happened: %+v", c)
		}
		leads := e.Amo.Leads(amoAccount)
		if len(leads) != customers {
			t.Fatalf("%d leads for %d customers", len(leads), customers)
		}
		for _, l := range leads {
			notes := amoNotesOn(e, l.ID)
			if len(notes) != each {
				t.Fatalf("lead %d: %d notes", l.ID, len(notes))
			}
			for i, text := range notes {
				if !strings.Contains(text, fmt.Sprintf("сообщение %d", i)) {
					t.Fatalf("lead %d: note %d is %q: order lost", l.ID, i, text)
				}
			}
		}
	})
}

// TestAmoCRMCallFigures prints how many amoCRM API calls mirroring 1,000
// customer messages from 50 new customers costs in each mirror mode. The
// messages come in 10 "hours" of 100 (two per customer); hourly flushes
// each hour, daily once at the end, each mirrors every hour before the
// next. The simulator has no rate limit here (the client still keeps 7/s).
// Runs only with MIRROR_FIGURES=1.
func TestAmoCRMCallFigures(t *testing.T) {
	if os.Getenv("MIRROR_FIGURES") == "" {
		t.Skip("set MIRROR_FIGURES=1 to measure")
	}
	const customers, hours, perHour = 50, 10, 100
	// "+amojo" runs with the Chats API channel: each new customer's chat is
	// also created and linked to the contact (one more API call each).
	for _, run := range []string{routing.MirrorHourly, routing.MirrorDaily, routing.MirrorEach, routing.MirrorEach + "+amojo", routing.MirrorHourly + "+amojo"} {
		if only := os.Getenv("MIRROR_FIGURES_RUN"); only != "" && only != run {
			continue
		}
		mode, withChat := strings.CutSuffix(run, "+amojo")
		t.Run(run, func(t *testing.T) {
			opts := amoOpts
			if withChat {
				opts = amojoOpts
			}
			e := apptest.Start(t, opts)
			id, _, _ := amoBound(t, e, map[string]any{"mode": "crm", "mirror": mode})
			e.WaitIdle()
			e.Amo.ResetCounts()
			started := time.Now()
			n := 0
			for h := 0; h < hours; h++ {
				for i := 0; i < perHour; i++ {
					n++
					amoSend(t, e, fmt.Sprintf("7916200%04d", i%customers), fmt.Sprintf("Клиент %d", i%customers), fmt.Sprintf("сообщение %d", n))
				}
				if mode == routing.MirrorHourly || (mode == routing.MirrorDaily && h == hours-1) {
					if st, body := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK {
						t.Fatalf("flush: %d %v", st, body)
					}
				}
				if mode != routing.MirrorDaily || h == hours-1 {
					want := n
					e.EventuallyWithin(15*time.Minute, "mirrored", func() bool { return mirroredCount(t, e) == want })
				}
			}
			if withChat {
				e.EventuallyWithin(15*time.Minute, "every message in amojo", func() bool {
					m := 0
					for _, c := range e.Amo.Chats(amoAccount) {
						m += len(c.Messages)
					}
					return m == n
				})
			}
			e.WaitIdle()
			c := e.Amo.Counts(amoAccount)
			amojo := map[string]int{}
			for _, r := range e.Amo.Requests() {
				if strings.HasPrefix(r.Path, "/v2/origin/custom/") {
					route := "new_message"
					if strings.HasSuffix(r.Path, "/chats") {
						route = "create_chat"
					}
					amojo[route]++
				}
			}
			t.Logf("FIGURES amoCRM run=%s messages=%d customers=%d api_calls=%d (%v) amojo_calls=%v notes=%d leads=%d contacts=%d tasks=%d in %v",
				run, n, customers, c.Requests, c.ByRoute, amojo, len(e.Amo.Notes(amoAccount)), len(e.Amo.Leads(amoAccount)), len(e.Amo.Contacts(amoAccount)),
				len(e.Amo.Tasks(amoAccount)), time.Since(started).Round(time.Second))
		})
	}
}

// TestAmoCRMFirstResponder: under first_responder a new lead waits on the
// installing user; the first group member to answer (the widget or amojo
// will call ClaimByAnswer) becomes its responsible user; a later answerer
// or an outsider changes nothing.
func TestAmoCRMFirstResponder(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		id, _, ch := amoBound(t, e, map[string]any{"mode": "crm",
			"owner": map[string]any{"strategy": "first_responder", "users": []map[string]any{{"user_id": "9000001"}, {"user_id": "9000002"}}}})
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		e.Eventually("lead", func() bool { return len(e.Amo.Leads(amoAccount)) == 1 })
		e.WaitIdle()
		if l := e.Amo.Leads(amoAccount)[0]; l.ResponsibleUserID != 9000001 {
			t.Fatalf("waiting lead on %d, want the installing user", l.ResponsibleUserID)
		}
		var contactID string
		if err := e.App.DB.Gorm.Table("contacts").Select("id").Where("phone = ?", "+79123456789").Scan(&contactID).Error; err != nil || contactID == "" {
			t.Fatalf("contact: %q %v", contactID, err)
		}
		in, _ := storedAmo(t, e, id)
		ctx := context.Background()
		for _, u := range []string{"9000099", "9000002", "9000001"} { // outsider, winner, late
			if err := e.App.AmoCRM.ClaimByAnswer(ctx, in, ch, contactID, u); err != nil {
				t.Fatal(err)
			}
			e.WaitIdle()
		}
		e.Eventually("lead handed to the first responder", func() bool { return e.Amo.Leads(amoAccount)[0].ResponsibleUserID == 9000002 })
		e.WaitIdle()
		if l := e.Amo.Leads(amoAccount)[0]; l.ResponsibleUserID != 9000002 {
			t.Fatalf("lead on %d after a later answer", l.ResponsibleUserID)
		}
	})
}

// TestAmoCRMInstagramByLink: an Instagram customer has no number to search
// by: a contact is made once, tagged Instagram, and found again by its
// stored link.
func TestAmoCRMInstagramByLink(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, _ := installAmoWidget(t, e)
		ch := e.CreateInstagram()
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, v)
		}
		ctx := context.Background()
		for i, text := range []string{"Привет", "Есть в наличии?"} {
			if _, err := e.Sim.SendInstagramText(ctx, apptest.IGUserID, "1790001", text); err != nil {
				t.Fatal(err)
			}
			e.Eventually("note", func() bool { return len(e.Amo.Notes(amoAccount)) == i+1 })
		}
		cs, ls := e.Amo.Contacts(amoAccount), e.Amo.Leads(amoAccount)
		if len(cs) != 1 || len(ls) != 1 || len(cs[0].Phones) != 0 || !slices.Contains(ls[0].Tags, "Instagram") || !slices.Equal(ls[0].ContactIDs, []int{cs[0].ID}) {
			t.Fatalf("contacts %+v leads %+v", cs, ls)
		}
		if n := e.Amo.Counts(amoAccount).ByRoute["GET /api/v4/contacts"]; n != 0 {
			t.Fatalf("%d phone searches for an Instagram customer", n)
		}
	})
}

// TestAmoCRMDeletedLead: a lead a user deleted is replaced by a new one
// for the same contact, and the message that found it gone is written
// there.
func TestAmoCRMDeletedLead(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm"})
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		e.Eventually("lead", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		old := e.Amo.Leads(amoAccount)[0]
		e.Amo.DeleteLead(amoAccount, old.ID)
		amoSend(t, e, "79123456789", "Анна", "Вы где?")
		e.Eventually("a new lead with the note", func() bool {
			ls := e.Amo.Leads(amoAccount)
			return len(ls) == 1 && ls[0].ID != old.ID && len(amoNotesOn(e, ls[0].ID)) == 1
		})
		e.WaitIdle()
		nl := e.Amo.Leads(amoAccount)[0]
		if !slices.Equal(nl.ContactIDs, old.ContactIDs) || len(e.Amo.Contacts(amoAccount)) != 1 || !strings.Contains(amoNotesOn(e, nl.ID)[0], "Вы где?") {
			t.Fatalf("replacement lead %+v (old %+v)", nl, old)
		}
		// And it stays the customer's lead.
		amoSend(t, e, "79123456789", "Анна", "Алло")
		e.Eventually("next note on it", func() bool { return len(amoNotesOn(e, nl.ID)) == 2 })
	})
}

// TestAmoCRMDeletedContact: a customer whose lead and contact a user
// deleted writes again: amoCRM refuses a lead naming the deleted contact
// (_embedded.contacts.0.id NotFound), so the contact link is forgotten, a
// new contact comes with the new lead in the same job, the message is
// written there, and no mirror job is left retrying. Another customer
// writing at the same time is unaffected.
func TestAmoCRMDeletedContact(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm"})
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		e.Eventually("lead", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		e.WaitIdle()
		old := e.Amo.Leads(amoAccount)[0]
		oldContact := e.Amo.Contacts(amoAccount)[0]
		if !e.Amo.DeleteLead(amoAccount, old.ID) || !e.Amo.DeleteContact(amoAccount, oldContact.ID) {
			t.Fatal("delete in amosim")
		}
		amoSend(t, e, "79123456789", "Анна", "Вы где?")
		amoSend(t, e, "79160000002", "Борис", "Добрый день")
		e.Eventually("two new leads with a note each", func() bool {
			ls := e.Amo.Leads(amoAccount)
			return len(ls) == 2 && len(amoNotesOn(e, ls[0].ID)) == 1 && len(amoNotesOn(e, ls[1].ID)) == 1
		})
		e.WaitIdle()
		cs := e.Amo.Contacts(amoAccount)
		if len(cs) != 2 {
			t.Fatalf("contacts %+v", cs)
		}
		var anna amosim.Contact
		for _, c := range cs {
			if c.Name == "Анна" {
				anna = c
			}
		}
		if anna.ID == 0 || anna.ID == oldContact.ID {
			t.Fatalf("Анна's contact %+v (old %d)", anna, oldContact.ID)
		}
		for _, l := range e.Amo.Leads(amoAccount) {
			if l.ID == old.ID || len(l.ContactIDs) != 1 {
				t.Fatalf("lead %+v", l)
			}
			if l.ContactIDs[0] == anna.ID && !strings.Contains(amoNotesOn(e, l.ID)[0], "Вы где?") {
				t.Fatalf("Анна's lead %+v notes %v", l, amoNotesOn(e, l.ID))
			}
		}
		if js := jobsOf(t, e, routing.JobMirror); len(js) != 0 {
			t.Fatalf("mirror jobs left: %+v", js)
		}
		// And they stay the customer's contact and lead.
		amoSend(t, e, "79123456789", "Анна", "Алло")
		e.Eventually("next note", func() bool { return len(e.Amo.Notes(amoAccount)) == 4 })
		e.WaitIdle()
		if len(e.Amo.Leads(amoAccount)) != 2 || len(e.Amo.Contacts(amoAccount)) != 2 {
			t.Fatalf("leads %+v contacts %+v", e.Amo.Leads(amoAccount), e.Amo.Contacts(amoAccount))
		}
	})
}
