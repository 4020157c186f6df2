package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// frame posts what Bitrix24 posts to an iframe handler.
func frame(t *testing.T, e *apptest.Env, path, authID, placement, options string) (int, string) {
	t.Helper()
	form := url.Values{"AUTH_ID": {authID}, "AUTH_EXPIRES": {"3600"}, "member_id": {apptest.B24MemberID}, "status": {"P"},
		"PLACEMENT": {placement}, "PLACEMENT_OPTIONS": {options}}
	resp, err := http.PostForm(e.URL+path+"?DOMAIN="+apptest.B24Domain+"&PROTOCOL=1&LANG=ru&APP_SID=x", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var sessRe = regexp.MustCompile(`name="sess" value="([^"]+)"`)

func sessOf(t *testing.T, page string) string {
	t.Helper()
	m := sessRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no session on the page:\n%s", page)
	}
	return strings.ReplaceAll(m[1], "&#43;", "+")
}

// submit posts a page form and follows its redirect.
func submit(t *testing.T, e *apptest.Env, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := noFollow.PostForm(e.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		// A refused send is the page again, as typed.
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	next, err := http.Get(e.URL + resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	defer next.Body.Close()
	b, _ := io.ReadAll(next.Body)
	return next.StatusCode, string(b)
}

func TestBitrix24CardTab(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	_, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)
	e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Когда доставка?")
	e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })
	contact := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "8 916 123-45-67", "VALUE_TYPE": "WORK"}}})
	deal := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Заказ 4512", "CONTACT_ID": contact})

	st, page := frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, 27), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(deal)+`"}`)
	if st != http.StatusOK || !strings.Contains(page, "Когда доставка?") || !strings.Contains(page, "79161234567") {
		t.Fatalf("card tab: %d\n%s", st, page)
	}
	sess := sessOf(t, page)
	st, page = submit(t, e, "/bitrix24/tab/send", url.Values{"sess": {sess}, "target": {ch + "|+79161234567"}, "text": {"Завтра с 10 до 14."}})
	if st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
		t.Fatalf("send from the tab: %d\n%s", st, page)
	}
	// The conversation reads oldest first, in the page's language.
	q, a := strings.Index(page, "Когда доставка?"), strings.Index(page, "Завтра с 10 до 14.")
	russian := regexp.MustCompile(`· (в очереди|отправлено|доставлено|прочитано)\s*<`)
	if q < 0 || a < 0 || q > a || !russian.MatchString(page) || regexp.MustCompile(`· (queued|sent|delivered|read)\s*<`).MatchString(page) {
		t.Fatalf("conversation order or status wording wrong (question at %d, reply at %d):\n%s", q, a, page)
	}
	// The answer names the portal user who wrote it (by id: this portal's
	// users were never read).
	if got := authorOf(page, "Завтра с 10 до 14."); got != "Пользователь #27" {
		t.Fatalf("the tab answer's author: %q", got)
	}
	path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
	e.Eventually("sent through the Graph API", func() bool { return len(graphSends(e.Sim, path)) == 1 })
	jsonEq(t, graphSends(e.Sim, path)[0].Body, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text","text":{"body":"Завтра с 10 до 14.","preview_url":false}}`)

	// A number that is not the record's is refused.
	_, page = submit(t, e, "/bitrix24/tab/send", url.Values{"sess": {sess}, "target": {ch + "|+77770000000"}, "text": {"x"}})
	if !strings.Contains(page, "не относится к записи") {
		t.Fatalf("foreign recipient accepted:\n%s", page)
	}
	// A customer who never wrote: free text is refused with the reason, a template goes.
	other := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Ерлан", "PHONE": []map[string]any{{"VALUE": "+7 707 123 45 67"}}})
	lead := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Новый", "CONTACT_ID": other})
	_, page = frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, 27), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(lead)+`"}`)
	sess2 := sessOf(t, page)
	_, page = submit(t, e, "/bitrix24/tab/send", url.Values{"sess": {sess2}, "target": {ch + "|+77071234567"}, "text": {"Здравствуйте"}})
	if !strings.Contains(page, "24") || strings.Contains(page, "поставлено") {
		t.Fatalf("free text outside the window:\n%s", page)
	}
	_, page = submit(t, e, "/bitrix24/tab/send", url.Values{"sess": {sess2}, "target": {ch + "|+77071234567"}, "template": {"order_update"}, "template_language": {"ru"}, "template_params": {"Ерлан, 4513"}})
	if !strings.Contains(page, "поставлено в очередь") {
		t.Fatalf("template from the tab:\n%s", page)
	}
	e.Eventually("template sent", func() bool { return len(graphSends(e.Sim, path)) == 2 })
	// The tab of one record cannot be used for another's number.
	_, page = submit(t, e, "/bitrix24/tab/send", url.Values{"sess": {sess2}, "target": {ch + "|+79161234567"}, "text": {"x"}})
	if !strings.Contains(page, "не относится к записи") {
		t.Fatalf("the second record's session reached the first record's customer:\n%s", page)
	}
	// The tab's notice is worded by the page from a code: a link cannot
	// put its own text on it.
	resp, err := http.Get(e.URL + "/bitrix24/tab?" + url.Values{"sess": {sess2}, "error": {"Call +1 555 0100 now"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Contains(string(b), "555 0100") || !strings.Contains(string(b), "Внутренняя ошибка") {
		t.Fatalf("a crafted notice: %v\n%s", err, b)
	}
	// Nor can a link send: the fields of a send are read from the body.
	before := len(graphSends(e.Sim, path))
	sendQ := url.Values{"sess": {sess2}, "target": {ch + "|+77071234567"}, "template": {"order_update"}, "template_language": {"ru"}}.Encode()
	if st, _ := submit(t, e, "/bitrix24/tab/send?"+sendQ, nil); st != http.StatusUnauthorized {
		t.Fatalf("a send from the query string: %d", st)
	}
	e.WaitIdle()
	if n := len(graphSends(e.Sim, path)); n != before {
		t.Fatalf("the query string sent a message: %d sends, want %d", n, before)
	}
	// The record's "8 916 …" is read by the workspace's rule: with the
	// trunk-8 rule off it is no Russian number, so the customer is not
	// the record's any more.
	if st, _ := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"phone_trunk8": false}); st != http.StatusOK {
		t.Fatalf("turn the trunk rule off: %d", st)
	}
	_, page = frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, 27), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(deal)+`"}`)
	if strings.Contains(page, "Когда доставка?") {
		t.Fatalf("with the trunk rule off, 8 916 … still found the +7 customer:\n%s", page)
	}
}

func TestBitrix24AppPage(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	integ, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)

	st, page := frame(t, e, "/bitrix24/app", "forged-token", "DEFAULT", "{}")
	if st != http.StatusUnauthorized {
		t.Fatalf("forged AUTH_ID: %d", st)
	}
	st, page = frame(t, e, "/bitrix24/app", e.B24.UserToken(apptest.B24MemberID, e.Portal.AdminUserID()), "DEFAULT", "{}")
	if st != http.StatusOK || !strings.Contains(page, "Продажи") || !strings.Contains(page, "Открытая линия") || !strings.Contains(page, "работает") {
		t.Fatalf("app page: %d\n%s", st, page)
	}
	sess := sessOf(t, page)
	st, page = submit(t, e, "/bitrix24/app/bind", url.Values{"sess": {sess}, "channel_id": {ch}, "mode": {"openlines"}, "line_id": {"1"}, "operator_name": {"1"}})
	if st != http.StatusOK || !strings.Contains(page, "Сохранено") {
		t.Fatalf("save: %d\n%s", st, page)
	}
	_, v := e.Do("GET", "/api/v1/integrations/"+integ, nil)
	b := v["bindings"].([]any)
	if len(b) != 1 || b[0].(map[string]any)["line_id"] != "1" {
		t.Fatalf("binding after the page saved it: %v", v)
	}
	e.Eventually("line activated", func() bool { return e.Portal.ConnectorStatus("switchboard_whatsapp", 1).Active })

	// A manager who is not an admin sees the page but cannot change it.
	st, page = frame(t, e, "/bitrix24/app", e.B24.UserToken(apptest.B24MemberID, 27), "DEFAULT", "{}")
	if st != http.StatusOK || strings.Contains(page, `action="/bitrix24/app/bind"`) {
		t.Fatalf("non-admin page: %d", st)
	}
	if st, _ := submit(t, e, "/bitrix24/app/bind", url.Values{"sess": {sessOf(t, page)}, "channel_id": {ch}, "mode": {"none"}}); st != http.StatusForbidden {
		t.Fatalf("non-admin save: %d", st)
	}
	if st, _ := submit(t, e, "/bitrix24/app/bind", url.Values{"sess": {forgeSignature(sess)}, "channel_id": {ch}, "mode": {"none"}}); st != http.StatusUnauthorized {
		t.Fatalf("tampered session: %d", st)
	}
}

func TestBitrix24Robot(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	integ, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)
	bindLine(t, e, integ, ch, "1")
	e.Eventually("robot registered", func() bool {
		for _, r := range e.Portal.Robots() {
			if r.Code == "switchboard_send" && r.UseSubscription == "Y" {
				return true
			}
		}
		return false
	})
	e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Привет")
	e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })

	token, st, err := e.B24.RunRobot(context.Background(), apptest.B24MemberID, "switchboard_send", []string{"crm", "CCrmDocumentDeal", "DEAL_8061"},
		map[string]string{"phone": "8 916 123-45-67", "text": "Ваш заказ собран."})
	if err != nil || st != http.StatusOK {
		t.Fatalf("robot run: %d %v", st, err)
	}
	path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
	e.Eventually("robot's message sent", func() bool { return len(graphSends(e.Sim, path)) == 1 })
	jsonEq(t, graphSends(e.Sim, path)[0].Body, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text","text":{"body":"Ваш заказ собран.","preview_url":false}}`)
	e.Eventually("result returned to the business process", func() bool {
		for _, r := range e.Portal.RobotResults() {
			if r.EventToken == token && r.ReturnValues["message_id"] != "" && r.ReturnValues["error"] == "" {
				return true
			}
		}
		return false
	})
	// Outside the window the robot reports the reason instead of sending.
	token2, _, _ := e.B24.RunRobot(context.Background(), apptest.B24MemberID, "switchboard_send", []string{"crm", "CCrmDocumentDeal", "DEAL_8062"},
		map[string]string{"phone": "+77071234567", "text": "Здравствуйте"})
	e.Eventually("failure returned to the business process", func() bool {
		for _, r := range e.Portal.RobotResults() {
			if r.EventToken == token2 {
				s, _ := r.ReturnValues["error"].(string)
				return strings.Contains(s, "24")
			}
		}
		return false
	})
	// A forged run is refused.
	form := url.Values{"code": {"switchboard_send"}, "event_token": {"x|y|z"}, "properties[phone]": {customer}, "properties[text]": {"spam"},
		"auth[member_id]": {apptest.B24MemberID}, "auth[application_token]": {"forged"}}
	resp, _ := http.PostForm(e.URL+"/bitrix24/robot", form)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged robot run: %d", resp.StatusCode)
	}
}

// Pages may be framed by the portal that shows them, whatever its domain
// (self-hosted, .ua, .com.br…), and by no other; an error page, whose
// portal is not known, keeps the cloud list.
func TestBitrix24PagesAreFramedByTheirPortal(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	e.InstallBitrix24()
	form := url.Values{"AUTH_ID": {e.B24.UserToken(apptest.B24MemberID, 1)}, "AUTH_EXPIRES": {"3600"}, "member_id": {apptest.B24MemberID}, "PLACEMENT": {"DEFAULT"}, "PLACEMENT_OPTIONS": {"{}"}}
	resp, err := http.PostForm(e.URL+"/bitrix24/app?DOMAIN="+apptest.B24Domain+"&LANG=ru", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("Content-Security-Policy"), "frame-ancestors "+e.B24URL; resp.StatusCode != 200 || got != want {
		t.Fatalf("app page: %d, CSP %q, want %q", resp.StatusCode, got, want)
	}
	form.Set("AUTH_ID", "forged")
	resp, err = http.PostForm(e.URL+"/bitrix24/app?DOMAIN="+apptest.B24Domain+"&LANG=ru", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, e.B24URL) {
		t.Fatalf("a page for a forged user names the portal: %q", csp)
	}
}
