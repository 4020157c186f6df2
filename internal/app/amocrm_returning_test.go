package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// amoContactID is the store contact of a customer's number.
func amoContactID(t *testing.T, e *apptest.Env, phone string) string {
	t.Helper()
	var id string
	if err := e.App.DB.Gorm.Table("contacts").Select("id").Where("phone = ?", phone).Scan(&id).Error; err != nil || id == "" {
		t.Fatalf("contact %s: %q %v", phone, id, err)
	}
	return id
}

// amoDialogOwner is the owner on the customer's dialog.
func amoDialogOwner(t *testing.T, e *apptest.Env, contactID string) string {
	t.Helper()
	var owner string
	if err := e.App.DB.Gorm.Table("dialogs").Select("owner_user_id").Where("contact_id = ?", contactID).Scan(&owner).Error; err != nil {
		t.Fatal(err)
	}
	return owner
}

// contactReads counts the account's contact searches and reads.
func contactReads(e *apptest.Env) int {
	by := e.Amo.Counts(amoAccount).ByRoute
	return by["GET /api/v4/contacts"] + by["GET /api/v4/contacts/{id}"]
}

// TestAmoCRMReturningCustomerKeepsLead walks the trial's item 1: a
// customer with an open lead, claimed by the first responder, keeps that
// lead and that owner when the channel is unbound and bound again through
// the API, when the integration is disabled in amoCRM and installed and
// bound again, and when it is deleted on the settings page and installed
// and bound again there. The dialog carries the lead over: no contact
// search is made for it.
func TestAmoCRMReturningCustomerKeepsLead(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		bind := map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003",
			"owner": map[string]any{"strategy": "first_responder", "users": []map[string]any{{"user_id": "9000001"}, {"user_id": "9000002"}}}}
		id, _, ch := amoBound(t, e, bind)
		amoSend(t, e, "79161234567", "Айгерим", "Здравствуйте")
		e.Eventually("lead and note", func() bool { return len(e.Amo.Leads(amoAccount)) == 1 && len(e.Amo.Notes(amoAccount)) == 1 })
		lead := e.Amo.Leads(amoAccount)[0].ID
		contact := amoContactID(t, e, "+79161234567")
		in, _ := storedAmo(t, e, id)
		if err := e.App.AmoCRM.ClaimByAnswer(ctx, in, ch, contact, "9000002"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the first responder owns the lead", func() bool { return e.Amo.Leads(amoAccount)[0].ResponsibleUserID == 9000002 })
		e.WaitIdle()

		again := func(step, text string, notes int) {
			t.Helper()
			searches := contactReads(e)
			amoSend(t, e, "79161234567", "Айгерим", text)
			e.Eventually(step+": the note on the same lead", func() bool { return len(amoNotesOn(e, lead)) == notes })
			e.WaitIdle()
			if ls := e.Amo.Leads(amoAccount); len(ls) != 1 || ls[0].ResponsibleUserID != 9000002 {
				t.Fatalf("%s: leads %+v", step, ls)
			}
			if n := contactReads(e); n != searches {
				t.Errorf("%s: the lead was looked for in the account (%d contact reads), not carried over", step, n-searches)
			}
			if o := amoDialogOwner(t, e, contact); o != "9000002" {
				t.Errorf("%s: dialog owner %q", step, o)
			}
		}

		// 1. DELETE and PUT through the API.
		if st, v := e.Do("DELETE", "/api/v1/integrations/"+id+"/channels/"+ch, nil); st >= 300 {
			t.Fatalf("unbind: %d %v", st, v)
		}
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, bind); st != http.StatusOK {
			t.Fatalf("bind again: %d %v", st, v)
		}
		again("API rebind", "Я снова тут", 2)
		// The other member answering now does not take the customer: the
		// owner came over with the dialog.
		if err := e.App.AmoCRM.ClaimByAnswer(ctx, in, ch, contact, "9000001"); err != nil {
			t.Fatal(err)
		}
		e.WaitIdle()
		if l := e.Amo.Leads(amoAccount)[0]; l.ResponsibleUserID != 9000002 || amoDialogOwner(t, e, contact) != "9000002" {
			t.Fatalf("after the rebind another member's answer took the customer: lead on %d, dialog %q", l.ResponsibleUserID, amoDialogOwner(t, e, contact))
		}

		// 2. Disabled in amoCRM, installed and bound again.
		if st, body, _ := amoGet(t, e, "/amocrm/disabled", e.Amo.DisableHookQuery(amoAccount)); st != http.StatusOK {
			t.Fatalf("disable hook: %d %s", st, body)
		}
		installAmoWidget(t, e)
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, bind); st != http.StatusOK {
			t.Fatalf("bind after reinstall: %d %v", st, v)
		}
		again("disable and reinstall", "Это снова я", 3)

		// 3. Deleted on the settings page, installed again and bound on
		// the settings page.
		_, sess := openSettings(t, e, amoAdminUser, "ru")
		if st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/delete", url.Values{"sess": {sess}}); st != http.StatusOK {
			t.Fatalf("delete: %d %.500s", st, page)
		}
		installAmoWidget(t, e)
		_, sess = openSettings(t, e, amoAdminUser, "ru")
		f := amoSettingsForm(sess, ch)
		f.Set("mirror:"+ch, "each")
		f.Set("strategy:"+ch, "first_responder")
		if st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f); st != http.StatusSeeOther {
			t.Fatalf("bind on the settings page: %d %.800s", st, page)
		}
		again("settings-page delete and reinstall", "И ещё раз", 4)
	})
}

// TestAmoCRMTakesOverContactLead: a customer the integration knows no
// lead of (a contact already in the account, or links lost) gets their
// contact's open lead, the binding's pipeline first, rather than a second
// one; with none open on_repeat "new" makes a new lead.
func TestAmoCRMTakesOverContactLead(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		id, _, _ := amoBound(t, e, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003", "on_repeat": "new"})
		c := e.Amo.PutContact(amoAccount, amosim.Contact{Name: "Ерлан", Phones: []amosim.Value{{Value: "+77011234567", EnumCode: "MOB"}}})
		won := e.Amo.PutLead(amoAccount, amosim.Lead{Name: "old", PipelineID: 7000001, StatusID: amosim.StatusWon, ContactIDs: []int{c}})
		other := e.Amo.PutLead(amoAccount, amosim.Lead{Name: "other pipeline", PipelineID: 7000002, StatusID: 61000011, ContactIDs: []int{c}})
		mine := e.Amo.PutLead(amoAccount, amosim.Lead{Name: "main pipeline", PipelineID: 7000001, StatusID: 61000003, ContactIDs: []int{c}})
		amoSend(t, e, "77011234567", "Ерлан", "Добрый день")
		e.Eventually("note on the open lead of the binding's pipeline", func() bool { return len(amoNotesOn(e, mine)) == 1 })
		e.WaitIdle()
		if n := len(e.Amo.Leads(amoAccount)); n != 3 || len(amoNotesOn(e, won)) != 0 || len(amoNotesOn(e, other)) != 0 {
			t.Fatalf("%d leads; notes on won %d, other %d", n, len(amoNotesOn(e, won)), len(amoNotesOn(e, other)))
		}

		// Every link and dialog record lost: the lead is found again.
		lose := func() {
			t.Helper()
			if err := e.App.DB.Gorm.Exec("DELETE FROM crm_links WHERE integration_id = ? AND kind IN ('crm_lead', 'crm_contact')", id).Error; err != nil {
				t.Fatal(err)
			}
			if err := e.App.DB.Gorm.Exec("UPDATE dialogs SET crm_entity = '', crm_entity_id = '' WHERE integration_id = ?", id).Error; err != nil {
				t.Fatal(err)
			}
		}
		lose()
		amoSend(t, e, "77011234567", "Ерлан", "Это снова я")
		e.Eventually("second note on the same lead", func() bool { return len(amoNotesOn(e, mine)) == 2 })
		e.WaitIdle()
		if n := len(e.Amo.Leads(amoAccount)); n != 3 {
			t.Fatalf("%d leads after the links were lost", n)
		}

		// Both won: on_repeat new makes a new lead on the same contact.
		e.Amo.SetLeadStatus(amoAccount, mine, amosim.StatusWon)
		e.Amo.SetLeadStatus(amoAccount, other, amosim.StatusLost)
		lose()
		amoSend(t, e, "77011234567", "Ерлан", "Новый заказ")
		e.Eventually("a new lead", func() bool { return len(e.Amo.Leads(amoAccount)) == 4 })
		e.WaitIdle()
		nl := e.Amo.Leads(amoAccount)[3]
		if len(nl.ContactIDs) != 1 || nl.ContactIDs[0] != c || len(amoNotesOn(e, nl.ID)) != 1 || !strings.Contains(amoNotesOn(e, nl.ID)[0], "Новый заказ") {
			t.Fatalf("new lead %+v notes %v", nl, amoNotesOn(e, nl.ID))
		}
	})
}

// TestAmoCRMBatchSurvivesReinstall walks the trial's item 4: messages
// waiting in an hourly batch when the integration is disabled are written,
// once, after it is installed and bound again; no batch is recorded as
// sent empty.
func TestAmoCRMBatchSurvivesReinstall(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		bind := map[string]any{"mode": "crm", "mirror": "hourly", "category_id": amoMain, "stage_id": "61000003"}
		id, _, ch := amoBound(t, e, bind)
		amoSend(t, e, "79161234567", "Анна", "до отключения раз")
		amoSend(t, e, "79161234567", "Анна", "до отключения два")
		e.WaitIdle()
		if n := len(e.Amo.Notes(amoAccount)); n != 0 {
			t.Fatalf("%d notes before the window closed", n)
		}
		if st, body, _ := amoGet(t, e, "/amocrm/disabled", e.Amo.DisableHookQuery(amoAccount)); st != http.StatusOK {
			t.Fatalf("disable hook: %d %s", st, body)
		}
		// A flush while disabled writes nothing and drops nothing.
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK || v["messages"] != float64(0) {
			t.Fatalf("flush while disabled: %d %v", st, v)
		}
		installAmoWidget(t, e)
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, bind); st != http.StatusOK {
			t.Fatalf("bind again: %d %v", st, v)
		}
		amoSend(t, e, "79161234567", "Анна", "после установки")
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK || v["messages"] != float64(3) {
			t.Fatalf("flush: %d %v", st, v)
		}
		e.Eventually("the batches written", func() bool { return mirroredCount(t, e) == 3 })
		e.WaitIdle()
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK || v["messages"] != float64(0) {
			t.Fatalf("second flush: %d %v", st, v)
		}
		e.WaitIdle()
		var all strings.Builder
		for _, n := range e.Amo.Notes(amoAccount) {
			all.WriteString(n.Text() + "\n")
		}
		for _, text := range []string{"до отключения раз", "до отключения два", "после установки"} {
			if c := strings.Count(all.String(), text); c != 1 {
				t.Errorf("%q written %d times:\n%s", text, c, all.String())
			}
		}
		if ls := e.Amo.Leads(amoAccount); len(ls) != 1 {
			t.Errorf("%d leads", len(ls))
		}
		var empty int64
		if err := e.App.DB.Gorm.Table("mirror_batches").Where("state = 'sent' AND messages = 0").Count(&empty).Error; err != nil || empty != 0 {
			t.Fatalf("%d batches recorded as sent empty (%v)", empty, err)
		}

		// A batch closed but not yet written (the account unpaid) when the
		// integration is disabled: written by the new binding once the
		// channel is bound again.
		e.Amo.SetUnpaid(amoAccount, true)
		amoSend(t, e, "79161234567", "Анна", "пока не оплачено")
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/mirror/flush", nil); st != http.StatusOK || v["messages"] != float64(1) {
			t.Fatalf("unpaid flush: %d %v", st, v)
		}
		e.WaitIdle()
		e.Amo.SetUnpaid(amoAccount, false)
		if st, body, _ := amoGet(t, e, "/amocrm/disabled", e.Amo.DisableHookQuery(amoAccount)); st != http.StatusOK {
			t.Fatalf("disable hook: %d %s", st, body)
		}
		installAmoWidget(t, e)
		if n := len(e.Amo.Notes(amoAccount)); n != 2 {
			t.Fatalf("%d notes before the channel is bound again", n)
		}
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, bind); st != http.StatusOK {
			t.Fatalf("bind again: %d %v", st, v)
		}
		e.Eventually("the waiting batch written", func() bool { return mirroredCount(t, e) == 4 })
		e.WaitIdle()
		notes := e.Amo.Notes(amoAccount)
		if len(notes) != 3 || !strings.Contains(notes[2].Text(), "пока не оплачено") || len(e.Amo.Leads(amoAccount)) != 1 {
			t.Fatalf("notes %d, leads %d", len(notes), len(e.Amo.Leads(amoAccount)))
		}
	})
}
