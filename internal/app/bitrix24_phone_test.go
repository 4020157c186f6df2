package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// CRM mode finds a customer's existing contact however the portal's people
// wrote the number, by the workspace's 8→7 rule (item 7), and does not
// take a stranger's record that only Bitrix24's own phone key confuses
// with the customer.
func TestBitrix24CRMContactByNationalNumber(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, body)
		}
		anna := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "8 (912) 345-67-89", "VALUE_TYPE": "MOBILE"}}})
		// Typed without a country code: Bitrix24's own key of it is
		// 9125556677, which +79125556677 does not find by itself.
		boris := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Борис", "PHONE": []map[string]any{{"VALUE": "тел. 912 555-66-77", "VALUE_TYPE": "WORK"}}})
		ctx := context.Background()
		leadOf := func(n int) b24sim.Entity {
			e.Eventually("lead", func() bool { return len(e.Portal.Leads()) >= n })
			return e.Portal.Leads()[n-1]
		}

		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "79123456789", "Анна С.", "Здравствуйте")
		if l := leadOf(1); l.Field("CONTACT_ID") != itoa(anna) {
			t.Fatalf("lead %v: not linked to the contact stored as 8 (912) 345-67-89 (%d)", l, anna)
		}
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "79125556677", "Борис", "Добрый день")
		if l := leadOf(2); l.Field("CONTACT_ID") != itoa(boris) {
			t.Fatalf("lead %v: not linked to the contact stored as 912 555-66-77 (%d)", l, boris)
		}
		if n := len(e.Portal.Contacts()); n != 2 {
			t.Fatalf("%d contacts: an existing contact was duplicated", n)
		}
		// One search call carries every form; the second reads the
		// candidates' stored numbers.
		var variants []any
		for _, c := range e.B24.Calls("crm.duplicate.findbycomm") {
			if c.Params["values"] != nil {
				variants = c.Params["values"].([]any)
			}
		}
		if len(variants) != 4 {
			t.Fatalf("findbycomm values %v", variants)
		}
	})
}

// In a workspace with the 8→7 switch off (Asia), a number written with a
// leading 8 is taken as written: neither the Russian reading of a stored
// "8 …" nor Bitrix24's 8→7 key of a Chinese number links a customer to a
// stranger's contact.
func TestBitrix24CRMContactSwitchOff(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		if st, body := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"phone_trunk8": false, "phone_region": "CN"}); st != http.StatusOK {
			t.Fatalf("workspace: %d %v", st, body)
		}
		ch := createWAIn(t, e, ws)
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, body)
		}
		russianWritten := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Eight", "PHONE": []map[string]any{{"VALUE": "8 (912) 345-67-89"}}})
		// Bitrix24 keys 8613800138000 (no '+') as 7613800138000, as it
		// keys this record; the older id would win if it were not checked.
		decoy := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Decoy", "PHONE": []map[string]any{{"VALUE": "+7 613 800 13 80 00"}}})
		li := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Li", "PHONE": []map[string]any{{"VALUE": "+86 138 0013 8000"}}})
		ctx := context.Background()

		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "8613800138000", "Li", "你好")
		e.Eventually("lead", func() bool { return len(e.Portal.Leads()) == 1 })
		if l := e.Portal.Leads()[0]; l.Field("CONTACT_ID") != itoa(li) {
			t.Fatalf("lead %v: want contact %d (+86 …), not %d or %d", l, li, decoy, russianWritten)
		}
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "79123456789", "Ivan", "Hello")
		e.Eventually("second lead", func() bool { return len(e.Portal.Leads()) == 2 })
		if l := e.Portal.Leads()[1]; l.Field("CONTACT_ID") == itoa(russianWritten) {
			t.Fatalf("lead %v: linked to a contact stored as 8 (912) … although the switch is off", l)
		}
		if n := len(e.Portal.Contacts()); n != 4 {
			t.Fatalf("%d contacts, want a new one for +79123456789", n)
		}
		for _, c := range e.B24.Calls("crm.duplicate.findbycomm") {
			for _, v := range c.Params["values"].([]any) {
				if v == "89123456789" {
					t.Fatalf("an 8→7 variant was tried with the switch off: %v", c.Params["values"])
				}
			}
		}
	})
}
