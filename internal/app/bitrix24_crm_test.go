package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

func TestBitrix24DirectCRMMode(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		// A contact with this number exists already; it must be found, not duplicated.
		existing := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "+7 (916) 123-45-67", "VALUE_TYPE": "WORK"}}})
		// The API checks the pipeline and stage against the portal, as the
		// app page does: a pipeline the portal lacks, or a stage of another
		// pipeline, is refused and nothing is bound.
		for _, bad := range []map[string]any{
			{"mode": "crm", "entity": "deal", "category_id": "1", "stage_id": "C1:NEW"},
			{"mode": "openlines", "line_id": "99"},
		} {
			if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, bad); st != http.StatusUnprocessableEntity {
				t.Fatalf("bind %v: %d %v", bad, st, body)
			}
		}
		if err := e.B24.AddDealCategory(apptest.B24MemberID, b24sim.DealCategory{ID: 1, Name: "Розница"}); err != nil {
			t.Fatal(err)
		}
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "deal", "category_id": "1", "stage_id": "WON"}); st != http.StatusUnprocessableEntity || errCode(body) != "stage_unknown" {
			t.Fatalf("a stage of another pipeline: %d %v", st, body)
		}
		if _, v := e.Do("GET", "/api/v1/integrations/"+integ, nil); len(v["bindings"].([]any)) != 0 {
			t.Fatalf("a refused bind was stored: %v", v)
		}
		st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "deal", "category_id": "1", "stage_id": "C1:NEW"})
		if st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, body)
		}
		ctx := context.Background()
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна Смирнова", "Хочу заказать доставку")
		e.Eventually("deal with the conversation in its timeline", func() bool {
			return len(e.Portal.Deals()) == 1 && len(e.Portal.TimelineComments()) == 1
		})
		deal := e.Portal.Deals()[0]
		if deal.Field("CONTACT_ID") != itoa(existing) || deal.Field("CATEGORY_ID") != "1" || deal.Field("STAGE_ID") != "C1:NEW" || deal.Field("SOURCE_ID") != "WHATSAPP" {
			t.Fatalf("deal %v (existing contact %d)", deal, existing)
		}
		if n := len(e.Portal.Contacts()); n != 1 {
			t.Fatalf("%d contacts: the existing one was duplicated", n)
		}
		c := e.Portal.TimelineComments()[0]
		if c.EntityType != "deal" || itoa(c.EntityID) != deal.Field("ID") || !strings.Contains(c.Comment, "Хочу заказать доставку") || !strings.Contains(c.Comment, "WhatsApp") {
			t.Fatalf("timeline %+v", c)
		}
		// The next message goes into the same deal's timeline.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна Смирнова", "И ещё вопрос")
		e.Eventually("second comment", func() bool { return len(e.Portal.TimelineComments()) == 2 })
		if len(e.Portal.Deals()) != 1 {
			t.Fatal("a second deal for the same customer")
		}

		// A new customer gets a new contact with the source and phone.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "77071234567", "Ерлан", "Сәлеметсіз бе")
		e.Eventually("new contact and deal", func() bool { return len(e.Portal.Contacts()) == 2 && len(e.Portal.Deals()) == 2 })
		nc := e.Portal.Contacts()[1]
		if nc.Field("NAME") != "Ерлан" || nc.Field("SOURCE_ID") != "WHATSAPP" || len(nc.Values("PHONE")) != 1 || nc.Values("PHONE")[0] != "+77071234567" {
			t.Fatalf("new contact %v", nc)
		}
	})
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

func TestBitrix24OAuthFromSwitchboard(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	_, ws := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Алматы", "timezone": "Asia/Almaty"})
	_, tok := e.Do("POST", "/api/v1/workspaces/"+ws["id"].(string)+"/tokens", nil)
	token := tok["token"].(string)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", e.URL+"/bitrix24/oauth/start?domain="+apptest.B24Domain, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Host != apptest.B24Domain || loc.Path != "/oauth/authorize/" ||
		loc.Query().Get("client_id") != apptest.B24ClientID || loc.Query().Get("state") == "" {
		t.Fatalf("start: %d %s", resp.StatusCode, loc)
	}
	if strings.Contains(loc.String(), apptest.B24Secret) {
		t.Fatal("the client secret went to the browser")
	}
	state := loc.Query().Get("state")
	callback := func(state string) int {
		q := url.Values{"code": {e.B24.IssueAuthCode(apptest.B24MemberID)}, "state": {state}, "member_id": {apptest.B24MemberID},
			"domain": {apptest.B24Domain}, "server_domain": {"oauth.bitrix.info"}}
		resp, err := http.Get(e.URL + "/bitrix24/oauth/callback?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := callback("forged-state"); st != http.StatusBadRequest {
		t.Fatalf("forged state: %d", st)
	}
	if st := callback(state); st != http.StatusOK {
		t.Fatalf("callback: %d", st)
	}
	if st := callback(state); st != http.StatusBadRequest {
		t.Fatalf("replayed state: %d", st)
	}
	_, list := e.Do("GET", "/api/v1/integrations", nil, token)
	data := list["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["workspace_id"] != ws["id"] {
		t.Fatalf("the portal did not land in the workspace that connected it: %v", list)
	}
	// Without a token, no start.
	resp, _ = client.Get(e.URL + "/bitrix24/oauth/start?domain=" + apptest.B24Domain)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("start without a token: %d", resp.StatusCode)
	}
}

func TestBitrix24LineEventsAndUninstall(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		ctx := context.Background()
		bindings := func() int {
			_, v := e.Do("GET", "/api/v1/integrations/"+integ, nil)
			return len(v["bindings"].([]any))
		}
		// The admin switches our connector off on line 1.
		if err := e.B24.PostEvent(ctx, apptest.B24MemberID, "ONIMCONNECTORSTATUSDELETE", url.Values{"data[connector]": {"switchboard_whatsapp"}, "data[line]": {"1"}}); err != nil {
			t.Fatal(err)
		}
		e.Eventually("binding removed", func() bool { return bindings() == 0 })
		bindLine(t, e, integ, ch, "1")
		if err := e.B24.PostEvent(ctx, apptest.B24MemberID, "ONIMCONNECTORLINEDELETE", url.Values{"data": {"1"}}); err != nil {
			t.Fatal(err)
		}
		e.Eventually("binding removed with the line", func() bool { return bindings() == 0 })

		bindLine(t, e, integ, ch, "1")
		e.WaitIdle()
		// Uninstall without "clear data": stopped, bindings revoked, the rest kept.
		if err := e.B24.PostEvent(ctx, apptest.B24MemberID, "ONAPPUNINSTALL", url.Values{"data[CLEAN]": {"0"}}); err != nil {
			t.Fatal(err)
		}
		_, v := e.Do("GET", "/api/v1/integrations/"+integ, nil)
		if v["state"] != "uninstalled" || len(v["bindings"].([]any)) != 0 {
			t.Fatalf("after uninstall: %v", v)
		}
		calls := len(e.B24.Requests())
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "после удаления")
		e.Eventually("inbound stored", func() bool { return len(e.Messages(ch)) == 1 })
		e.App.Queue.Notify()
		if n := len(e.B24.Requests()); n != calls {
			t.Fatalf("the gateway called an uninstalled portal (%d new requests)", n-calls)
		}
	})
}

// "Clear application data" on uninstall deletes the portal (the default
// on_clean setting).
func TestBitrix24UninstallWithCleanDeletes(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	integ, _ := e.InstallBitrix24()
	if err := e.B24.PostEvent(context.Background(), apptest.B24MemberID, "ONAPPUNINSTALL", url.Values{"data[CLEAN]": {"1"}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.Do("GET", "/api/v1/integrations/"+integ, nil); st != http.StatusNotFound {
		t.Fatalf("integration after a clean uninstall: %d", st)
	}
}

// TestBitrix24CRMRebindKeepsDeal: a customer's open deal survives the
// channel being unbound and bound again (a new binding takes over the
// dialog's deal); the next message goes into its timeline, no second
// deal is made.
func TestBitrix24CRMRebindKeepsDeal(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bind := map[string]any{"mode": "crm", "entity": "deal", "category_id": "0", "on_repeat": "new"}
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, bind); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, body)
		}
		ctx := context.Background()
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Здравствуйте")
		e.Eventually("deal and comment", func() bool { return len(e.Portal.Deals()) == 1 && len(e.Portal.TimelineComments()) == 1 })
		if st, body := e.Do("DELETE", "/api/v1/integrations/"+integ+"/channels/"+ch, nil); st >= 300 {
			t.Fatalf("unbind: %d %v", st, body)
		}
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, bind); st != http.StatusOK {
			t.Fatalf("bind again: %d %v", st, body)
		}
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Это снова я")
		e.Eventually("second comment", func() bool { return len(e.Portal.TimelineComments()) == 2 })
		e.WaitIdle()
		if n := len(e.Portal.Deals()); n != 1 {
			t.Fatalf("%d deals after the rebind", n)
		}
		deal, c := e.Portal.Deals()[0], e.Portal.TimelineComments()[1]
		if itoa(c.EntityID) != deal.Field("ID") || !strings.Contains(c.Comment, "Это снова я") {
			t.Fatalf("comment %+v on deal %s", c, deal.Field("ID"))
		}
	})
}
