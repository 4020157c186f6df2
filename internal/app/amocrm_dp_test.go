package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// amoDPKey asks the gateway for the account's digital pipeline key as the
// widget's dpSettings does, with user's disposable token.
func amoDPKey(t *testing.T, e *apptest.Env, user int) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/amocrm/widget/dp-key", nil)
	req.Header.Set("X-Auth-Token", amoToken(t, e, user))
	req.Header.Set("Origin", e.AmoURL)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Key string `json:"key"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("dp key answer: %s", b)
		}
	}
	return resp.StatusCode, out.Key
}

// waSends are the bodies of the WhatsApp messages the gateway posted to
// Meta.
func waSends(e *apptest.Env) []string {
	var out []string
	for _, r := range e.Sim.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/"+apptest.PhoneNumberID+"/messages") && !r.IsReadMark() {
			out = append(out, string(r.Body))
		}
	}
	return out
}

// TestAmoCRMDigitalPipeline: the widget's action on a stage sends the
// lead's customer its text ({{name}} filled in) when the lead moves in,
// noted on the lead as Switchboard's; a run without the account's key is
// a 401 and keeps nothing; amoCRM's redelivery sends nothing more; a
// lead's contact who never wrote gets the template instead of the text
// (noted on that lead, no new one); a lead without a phone gets a note
// saying why.
func TestAmoCRMDigitalPipeline(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		amoBound(t, e, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": amoFirstOpen})
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		e.Eventually("lead", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		e.WaitIdle()
		lead := e.Amo.Leads(amoAccount)[0]

		if st, _ := amoDPKey(t, e, amoManagerUser); st != http.StatusForbidden {
			t.Fatalf("a manager got the key: %d", st)
		}
		st, key := amoDPKey(t, e, amoAdminUser)
		if st != http.StatusOK || len(key) < 20 {
			t.Fatalf("dp key: %d %q", st, key)
		}

		// Forged: the action carries another key.
		if err := e.Amo.SetDPAction(amoAccount, 7000001, 61000003, map[string]string{"text": "Ваш заказ готов", "key": "forged-" + key[7:]}); err != nil {
			t.Fatal(err)
		}
		d, err := e.Amo.MoveLead(ctx, amoAccount, lead.ID, 61000003)
		if err != nil || d == nil || d.Status != http.StatusUnauthorized {
			t.Fatalf("forged run: %+v %v", d, err)
		}
		e.WaitIdle()
		var events int64
		if err := e.App.DB.Gorm.Table("crm_events").Where("kind = ?", "DP").Count(&events).Error; err != nil || events != 0 {
			t.Fatalf("a forged run was kept: %d %v", events, err)
		}
		sent := len(waSends(e))

		// The genuine action: the linked customer gets the text, once.
		if err := e.Amo.SetDPAction(amoAccount, 7000001, 61000003, map[string]string{"text": "{{name}}, ваш заказ готов", "key": key}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Amo.MoveLead(ctx, amoAccount, lead.ID, 61000002); err != nil {
			t.Fatal(err)
		}
		d, err = e.Amo.MoveLead(ctx, amoAccount, lead.ID, 61000003)
		if err != nil || d == nil || d.Status != http.StatusOK {
			t.Fatalf("run: %+v %v", d, err)
		}
		e.Eventually("the message reached Meta", func() bool { return len(waSends(e)) == sent+1 })
		if body := waSends(e)[sent]; !strings.Contains(body, "Анна, ваш заказ готов") || !strings.Contains(body, "79123456789") {
			t.Fatalf("sent %s", body)
		}
		// The automation's message is noted on the lead as Switchboard's.
		e.Eventually("the message noted", func() bool { return len(amoNotesOn(e, lead.ID)) == 2 })
		if n := amoNotesOn(e, lead.ID)[1]; !strings.Contains(n, "Switchboard") || !strings.Contains(n, "Анна, ваш заказ готов") {
			t.Fatalf("note of the sent message %q", n)
		}
		if again := e.Amo.Redeliver(ctx, d); again.Status != http.StatusOK {
			t.Fatalf("redelivery: %+v", again)
		}
		e.WaitIdle()
		if n := len(waSends(e)); n != sent+1 {
			t.Fatalf("a redelivered run sent again: %d sends", n-sent)
		}

		// A contact who never wrote: the text cannot go, the template does.
		boris := e.Amo.PutContact(amoAccount, amosim.Contact{Name: "Борис", Phones: []amosim.Value{{Value: "+7 916 000-11-22", EnumCode: "MOB"}}})
		bl := e.Amo.PutLead(amoAccount, amosim.Lead{Name: "Борис", PipelineID: 7000001, StatusID: 61000002, ContactIDs: []int{boris}})
		if err := e.Amo.SetDPAction(amoAccount, 7000001, 61000003, map[string]string{
			"text": "Здравствуйте", "template": "order_update", "template_language": "ru", "template_params": "{{name}}, 4513", "key": key}); err != nil {
			t.Fatal(err)
		}
		if d, err := e.Amo.MoveLead(ctx, amoAccount, bl, 61000003); err != nil || d.Status != http.StatusOK {
			t.Fatalf("template run: %+v %v", d, err)
		}
		e.Eventually("the template reached Meta", func() bool { return len(waSends(e)) == sent+2 })
		if body := waSends(e)[sent+1]; !strings.Contains(body, `"order_update"`) || !strings.Contains(body, "79160001122") || !strings.Contains(body, "Борис") ||
			!strings.Contains(body, "4513") || strings.Contains(body, "Здравствуйте") {
			t.Fatalf("template sent %s", body)
		}

		// Noted on Boris's lead, not on a new one.
		e.Eventually("the template noted on its lead", func() bool { return len(amoNotesOn(e, bl)) == 1 })
		if n := len(e.Amo.Leads(amoAccount)); n != 2 {
			t.Fatalf("%d leads after the template: its note made a lead", n)
		}

		// A lead whose contact has no phone: a note says why.
		vera := e.Amo.PutContact(amoAccount, amosim.Contact{Name: "Вера"})
		vl := e.Amo.PutLead(amoAccount, amosim.Lead{Name: "Вера", PipelineID: 7000001, StatusID: 61000002, ContactIDs: []int{vera}})
		if d, err := e.Amo.MoveLead(ctx, amoAccount, vl, 61000003); err != nil || d.Status != http.StatusOK {
			t.Fatalf("run without a phone: %+v %v", d, err)
		}
		e.Eventually("a note on the lead", func() bool { return len(amoNotesOn(e, vl)) == 1 })
		e.WaitIdle()
		if n := amoNotesOn(e, vl)[0]; !strings.Contains(n, "не отправлено") || !strings.Contains(n, "нет контакта с телефоном") {
			t.Fatalf("note %q", n)
		}
		if n := len(waSends(e)); n != sent+2 {
			t.Fatalf("%d sends after the lead without a phone", n-sent)
		}
	})
}
