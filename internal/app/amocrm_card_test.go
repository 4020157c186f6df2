package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/store"
	"gorm.io/gorm"
)

// amoCard opens the widget's card window for a record as amoCRM's user
// does: a ticket bought with the widget's disposable token, then the
// iframe's GET. It returns the status and the page.
func amoCard(t *testing.T, e *apptest.Env, user int, entity string, id int, lang string) (int, string) {
	t.Helper()
	st, body, _ := widgetTicket(t, e, amoToken(t, e, user), "card")
	if st != http.StatusOK {
		t.Fatalf("ticket: %d %v", st, body)
	}
	return amoCardGet(t, e, url.Values{"ticket": {body["ticket"].(string)}, "entity": {entity}, "id": {strconv.Itoa(id)}, "lang": {lang}})
}

func amoCardGet(t *testing.T, e *apptest.Env, q url.Values) (int, string) {
	t.Helper()
	resp, err := http.Get(e.URL + "/amocrm/card?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cardFile is a file the send box attaches.
type cardFile struct {
	name, mime string
	data       []byte
}

// amoCardSend posts the card window's send box as the browser does
// (multipart), following the redirect; a refusal is returned as it is.
func amoCardSend(t *testing.T, e *apptest.Env, fields url.Values, file *cardFile) (int, string) {
	t.Helper()
	return pagePostMultipart(t, e, "/amocrm/card/send?lang=ru", fields, file)
}

// pagePostMultipart posts a page's send box as the browser does
// (multipart), following the redirect; a refusal is returned as it is.
func pagePostMultipart(t *testing.T, e *apptest.Env, path string, fields url.Values, file *cardFile) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if file != nil {
		h := make(map[string][]string)
		h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + file.name + `"`}
		h["Content-Type"] = []string{file.mime}
		part, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write(file.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := noFollow.Post(e.URL+path, mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		return submitFollow(t, e, resp.Header.Get("Location"))
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// amoCardFixture: the fixtures' account with a bound WhatsApp channel,
// one customer who wrote (their lead made by the connector), and the
// channel's templates synced.
type amoCardFixture struct {
	integ, ws, ch string
	lead          int
}

func newAmoCardFixture(t *testing.T, e *apptest.Env) *amoCardFixture {
	t.Helper()
	id, ws, ch := amoBound(t, e, map[string]any{"mode": "crm", "name": "WhatsApp Продажи"})
	// An approved English template without variables, next to the
	// defaults: every language is offered, the user's first.
	e.Sim.SetTemplates(apptest.WabaID, append(metasim.DefaultTemplates(), metasim.Template{ID: "1000000000000009", Name: "thanks",
		Language: "en_US", Category: "UTILITY", Status: "APPROVED", Components: []map[string]any{{"type": "BODY", "text": "Thank you for your order!"}}}))
	amoSend(t, e, "79161234567", "Анна", "Когда доставка?")
	e.Eventually("the customer's lead", func() bool { return len(e.Amo.Leads(amoAccount)) == 1 })
	e.WaitIdle()
	if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/templates/refresh", nil); st != http.StatusOK {
		t.Fatalf("templates: %d %v", st, body)
	}
	if st, body := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil); st != http.StatusOK {
		t.Fatalf("users: %d %v", st, body)
	}
	return &amoCardFixture{integ: id, ws: ws, ch: ch, lead: e.Amo.Leads(amoAccount)[0].ID}
}

// TestAmoCRMCardWindow: the widget's card window shows the lead's
// conversation and sends from it: a text, a file, and once the customer's
// 24-hour window is closed, a template from the WABA's synced ones with
// every variable asked for; tickets and sessions are single-use and signed.
func TestAmoCRMCardWindow(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		f := newAmoCardFixture(t, e)
		path := "/v25.0/" + apptest.PhoneNumberID + "/messages"

		st, page := amoCard(t, e, amoManagerUser, "leads", f.lead, "ru")
		target := f.ch + "|+79161234567"
		if st != http.StatusOK || !strings.Contains(page, "Когда доставка?") || !strings.Contains(page, `value="`+strings.ReplaceAll(target, "+", "&#43;")+`"`) {
			t.Fatalf("card window: %d\n%s", st, page)
		}
		if !strings.Contains(page, `id="chat-window" hidden`) {
			t.Fatalf("the window banner shows for a customer who just wrote:\n%s", page)
		}
		// The channel is named as the account's binding names it.
		if !strings.Contains(page, "WhatsApp Продажи → &#43;79161234567") || !strings.Contains(page, "WhatsApp Продажи · ") {
			t.Fatalf("the binding's name is not used:\n%s", page)
		}
		// An open window preselects no template.
		if regexp.MustCompile(`data-channel="[^"]*" selected>order_update`).MatchString(page) {
			t.Fatalf("a template preselected with the window open:\n%s", page)
		}
		// Only the account's own pages may frame the window.
		resp, err := http.Get(e.URL + "/amocrm/card?sess=" + url.QueryEscape(sessOf(t, page)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != http.StatusOK || !strings.Contains(csp, "frame-ancestors "+e.AmoURL+";") {
			t.Fatalf("%d, CSP %q", resp.StatusCode, csp)
		}
		sess := sessOf(t, page)

		// A text reaches WhatsApp.
		st, page = amoCardSend(t, e, url.Values{"sess": {sess}, "target": {target}, "text": {"Завтра с 10 до 14."}}, nil)
		if st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") || !strings.Contains(page, "Завтра с 10 до 14.") {
			t.Fatalf("send: %d\n%s", st, page)
		}
		// The answer names the manager who wrote it.
		if got := authorOf(page, "Завтра с 10 до 14."); got != "Иван Менеджеров" {
			t.Fatalf("the manager's answer's author: %q", got)
		}
		e.Eventually("text sent through the Graph API", func() bool { return len(graphSends(e.Sim, path)) == 1 })
		jsonEq(t, graphSends(e.Sim, path)[0].Body, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text","text":{"body":"Завтра с 10 до 14.","preview_url":false}}`)

		// A file: uploaded to Meta, sent as a document with the text as caption.
		pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 2048)...)
		st, page = amoCardSend(t, e, url.Values{"sess": {sess}, "target": {target}, "text": {"Счёт"}}, &cardFile{"invoice.pdf", "application/pdf", pdf})
		if st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
			t.Fatalf("file: %d\n%s", st, page)
		}
		e.Eventually("document sent", func() bool { return len(graphSends(e.Sim, path)) == 2 })
		var doc struct {
			Type     string `json:"type"`
			Document struct {
				ID, Caption, Filename string
			} `json:"document"`
		}
		if err := json.Unmarshal(graphSends(e.Sim, path)[1].Body, &doc); err != nil || doc.Type != "document" || doc.Document.ID == "" ||
			doc.Document.Caption != "Счёт" || doc.Document.Filename != "invoice.pdf" {
			t.Fatalf("document send: %v %s", err, graphSends(e.Sim, path)[1].Body)
		}
		if n := len(graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/media")); n != 1 {
			t.Fatalf("%d media uploads", n)
		}

		// A lead whose contact never wrote: the window is closed.
		contact := e.Amo.PutContact(amoAccount, amosim.Contact{Name: "Ерлан", Phones: []amosim.Value{{Value: "8 707 123 45 67", EnumCode: "WORK"}}})
		lead := e.Amo.PutLead(amoAccount, amosim.Lead{Name: "Новый", StatusID: 61000002, PipelineID: 7000001, ContactIDs: []int{contact}})
		st, page = amoCard(t, e, amoManagerUser, "leads", lead, "ru")
		other := f.ch + "|+77071234567"
		if st != http.StatusOK || strings.Contains(page, "Когда доставка?") || !strings.Contains(page, `value="`+strings.ReplaceAll(other, "+", "&#43;")+`"`) {
			t.Fatalf("second lead: %d\n%s", st, page)
		}
		if strings.Contains(page, `id="chat-window" hidden`) || !strings.Contains(page, "WhatsApp позволяет отправить только шаблон") {
			t.Fatalf("no closed-window banner:\n%s", page)
		}
		// The synced, approved templates (not the pending or rejected ones,
		// nor one with a header variable) with a field per variable.
		pick := f.ch + "|order_update|ru"
		if !strings.Contains(page, `value="`+pick+`"`) || !strings.Contains(page, `name="tv|order_update|ru|1"`) || !strings.Contains(page, `name="tv|order_update|ru|2"`) ||
			strings.Contains(page, "appointment_reminder") || strings.Contains(page, "win_back") {
			t.Fatalf("template picker:\n%s", page)
		}
		// Closed: the first template (the user's language first) is
		// chosen, every language is offered with its name, and the one
		// left out is named.
		ru, en := strings.Index(page, `>order_update (русский · ru)<`), strings.Index(page, `>thanks (English (US) · en_US)<`)
		if !strings.Contains(page, `value="`+pick+`" data-channel="`+f.ch+`" selected>`) || ru < 0 || en < ru {
			t.Fatalf("closed window: the first template is not chosen, or languages missing (ru at %d, en at %d):\n%s", ru, en, page)
		}
		if !strings.Contains(page, `id="chat-tpl-omitted"`) || !strings.Contains(page, "spring_sale (English (US) · en_US)") {
			t.Fatalf("the left-out template is not named:\n%s", page)
		}
		sess2 := sessOf(t, page)
		_, page = amoCardSend(t, e, url.Values{"sess": {sess2}, "target": {other}, "text": {"Здравствуйте"}}, nil)
		if !strings.Contains(page, "только шаблон") || strings.Contains(page, "поставлено") {
			t.Fatalf("free text outside the window:\n%s", page)
		}
		// A refusal keeps the chosen template and what was typed, escaped.
		st, page = amoCardSend(t, e, url.Values{"sess": {sess2}, "target": {other}, "tpl": {f.ch + "|thanks|en_US"}, "tv|order_update|ru|1": {`Ерлан <b>"x"`}}, nil)
		if st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
			// (thanks has no variables: it goes)
			t.Fatalf("a template without variables: %d\n%s", st, page)
		}
		st, page = amoCardSend(t, e, url.Values{"sess": {sess2}, "target": {other}, "tpl": {pick}, "tv|order_update|ru|1": {`Ерлан <b>"x"`}}, nil)
		if st != http.StatusUnprocessableEntity || !strings.Contains(page, "Заполните все переменные") {
			t.Fatalf("a template with a variable left empty: %d\n%s", st, page)
		}
		if !strings.Contains(page, `value="`+pick+`" data-channel="`+f.ch+`" selected>`) ||
			!strings.Contains(page, `name="tv|order_update|ru|1" value="Ерлан &lt;b&gt;&#34;x&#34;"`) || strings.Contains(page, "<b>") {
			t.Fatalf("the refused template or its variables are lost (or not escaped):\n%s", page)
		}
		sess2 = sessOf(t, page)
		_, page = amoCardSend(t, e, url.Values{"sess": {sess2}, "target": {other}, "tpl": {f.ch + "|made_up|ru"}}, nil)
		if !strings.Contains(page, "Такого утверждённого шаблона") {
			t.Fatalf("an unknown template:\n%s", page)
		}
		_, page = amoCardSend(t, e, url.Values{"sess": {sess2}, "target": {other}, "tpl": {pick}, "tv|order_update|ru|1": {"Ерлан"}, "tv|order_update|ru|2": {"A-4513"},
			"text": {"left in the box"}}, nil)
		if !strings.Contains(page, "поставлено в очередь") {
			t.Fatalf("template:\n%s", page)
		}
		// The sent template reads as the customer got it.
		if !strings.Contains(page, "Здравствуйте, Ерлан! Заказ A-4513 передан в доставку.") || strings.Contains(page, "[template") ||
			!strings.Contains(page, "Thank you for your order!") {
			t.Fatalf("a sent template is not shown as its text:\n%s", page)
		}
		e.Eventually("template sent", func() bool { return len(graphSends(e.Sim, path)) == 4 })
		jsonEq(t, graphSends(e.Sim, path)[3].Body, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"77071234567","type":"template",`+
			`"template":{"name":"order_update","language":{"policy":"deterministic","code":"ru"},"components":[{"type":"body","parameters":[{"type":"text","text":"Ерлан"},{"type":"text","text":"A-4513"}]}]}}`)

		// The second record's session cannot write to the first record's customer.
		if _, page = amoCardSend(t, e, url.Values{"sess": {sess2}, "target": {target}, "text": {"x"}}, nil); !strings.Contains(page, "не относится к записи") {
			t.Fatalf("another record's customer:\n%s", page)
		}

		// English.
		if st, page = amoCard(t, e, amoManagerUser, "leads", f.lead, "en"); st != http.StatusOK || !strings.Contains(page, "Conversation") || !strings.Contains(page, "Write to the customer") {
			t.Fatalf("English: %d\n%s", st, page)
		}

		// A ticket opens one page once; a forged ticket or session opens none.
		_, body, _ := widgetTicket(t, e, amoToken(t, e, amoManagerUser), "card")
		q := url.Values{"ticket": {body["ticket"].(string)}, "entity": {"leads"}, "id": {strconv.Itoa(f.lead)}, "lang": {"ru"}}
		if st, _ := amoCardGet(t, e, q); st != http.StatusOK {
			t.Fatalf("first use of a ticket: %d", st)
		}
		if st, page := amoCardGet(t, e, q); st != http.StatusUnauthorized || strings.Contains(page, "Когда доставка?") || !strings.Contains(page, "Откройте карточку") {
			t.Fatalf("replayed ticket: %d\n%s", st, page)
		}
		q.Set("ticket", "forged-ticket")
		if st, _ := amoCardGet(t, e, q); st != http.StatusUnauthorized {
			t.Fatalf("forged ticket: %d", st)
		}
		// A settings ticket does not open the card.
		_, body, _ = widgetTicket(t, e, amoToken(t, e, amoAdminUser), "settings")
		q.Set("ticket", body["ticket"].(string))
		if st, _ := amoCardGet(t, e, q); st != http.StatusUnauthorized {
			t.Fatalf("settings ticket on the card: %d", st)
		}
		forged := forgeSignature(sess)
		if st, _ := amoCardGet(t, e, url.Values{"sess": {forged}}); st != http.StatusUnauthorized {
			t.Fatalf("forged session: %d", st)
		}
		before := len(graphSends(e.Sim, path))
		if st, _ := amoCardSend(t, e, url.Values{"sess": {forged}, "target": {target}, "text": {"x"}}, nil); st != http.StatusUnauthorized {
			t.Fatalf("send with a forged session: %d", st)
		}
		// Nor can a link send: the session is read from the body only.
		resp, err = noFollow.Post(e.URL+"/amocrm/card/send?"+url.Values{"sess": {sess}, "target": {target}, "text": {"x"}}.Encode(), "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a send from the query string: %d", resp.StatusCode)
		}
		e.WaitIdle()
		if n := len(graphSends(e.Sim, path)); n != before {
			t.Fatalf("refused sends reached WhatsApp: %d, want %d", n, before)
		}
	})
}

// TestAmoCRMCardAccess: the card window applies the access matrix and
// visibility: read shows the conversation without a send box and refuses
// a send with 403; none hides the channel; "own" hides a colleague's
// dialog and says why; the default outbound channel is preselected.
func TestAmoCRMCardAccess(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		f := newAmoCardFixture(t, e)
		settings := "/api/v1/integrations/" + f.integ + "/settings"
		put := func(body map[string]any) {
			t.Helper()
			if st, resp := e.Do("PUT", settings, body); st != http.StatusOK {
				t.Fatalf("put %v: %d %v", body, st, resp)
			}
		}
		target := f.ch + "|+79161234567"
		shown := `value="` + strings.ReplaceAll(target, "+", "&#43;") + `"`
		manager := strconv.Itoa(amoManagerUser)

		// A second bound channel, the manager's default: preselected.
		e.Sim.AddWhatsAppNumber("555000111", apptest.WabaID, "+7 701 555 00 11", apptest.WAToken)
		st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Склад", "workspace_id": f.ws,
			"phone_number_id": "555000111", "waba_id": apptest.WabaID, "access_token": apptest.WAToken})
		if st != http.StatusCreated {
			t.Fatalf("second channel: %d %v", st, body)
		}
		second := body["id"].(string)
		if st, v := e.Do("PUT", "/api/v1/integrations/"+f.integ+"/channels/"+second, map[string]any{"mode": "crm"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, v)
		}
		put(map[string]any{"access": []map[string]any{{"user_id": manager, "channels": map[string]string{f.ch: "send", second: "send"}, "default_channel_id": second}}})
		_, page := amoCard(t, e, amoManagerUser, "leads", f.lead, "ru")
		if !strings.Contains(page, `value="`+strings.ReplaceAll(second+"|+79161234567", "+", "&#43;")+`" data-channel="`+second+`" data-type="whatsapp" data-open="0" selected`) {
			t.Fatalf("the default channel is not preselected:\n%s", page)
		}
		oldSess := sessOf(t, page)

		// read: the conversation, no send box, the reason, and a 403.
		put(map[string]any{"access": []map[string]any{{"user_id": manager, "channels": map[string]string{f.ch: "read"}}}})
		_, page = amoCard(t, e, amoManagerUser, "leads", f.lead, "ru")
		if !strings.Contains(page, "Когда доставка?") || strings.Contains(page, shown) || strings.Contains(page, `id="chat-form"`) || !strings.Contains(page, "только просмотр") {
			t.Fatalf("read:\n%s", page)
		}
		// Inside amoCRM the account's admin sets the rights, in the widget.
		if !strings.Contains(page, "администратор аккаунта amoCRM в настройках виджета") || strings.Contains(page, "администратор Switchboard") {
			t.Fatalf("the read-only notice names the wrong admin:\n%s", page)
		}
		if st, page := amoCardSend(t, e, url.Values{"sess": {oldSess}, "target": {target}, "text": {"Нельзя"}}, nil); st != http.StatusForbidden || !strings.Contains(page, "только просмотр") {
			t.Fatalf("send with read: %d\n%s", st, page)
		}

		// none: nothing of the channel.
		put(map[string]any{"access": []map[string]any{{"user_id": manager, "channels": map[string]string{second: "send"}}}})
		_, page = amoCard(t, e, amoManagerUser, "leads", f.lead, "ru")
		if strings.Contains(page, "Когда доставка?") || strings.Contains(page, shown) {
			t.Fatalf("none still shows the channel:\n%s", page)
		}
		if st, page := amoCardSend(t, e, url.Values{"sess": {oldSess}, "target": {target}, "text": {"Нельзя"}}, nil); st != http.StatusForbidden || !strings.Contains(page, "нет доступа") {
			t.Fatalf("send with none: %d\n%s", st, page)
		}

		// own: a colleague's dialog is hidden, and the page says why.
		put(map[string]any{"access": []map[string]any{{"user_id": manager, "channels": map[string]string{f.ch: "send"}}}, "visibility": "own"})
		ctx := context.Background()
		ds, _, err := e.App.Store.ListDialogs(ctx, store.All, store.DialogFilter{IntegrationID: f.integ, ChannelID: f.ch}, nil, 10)
		if err != nil || len(ds) != 1 {
			t.Fatalf("dialogs: %v %d", err, len(ds))
		}
		err = e.App.Store.Tx(ctx, func(tx *gorm.DB) error {
			_, err := store.SetDialogOwner(tx, store.DialogKey{IntegrationID: f.integ, ChannelID: f.ch, ContactID: ds[0].ContactID}, strconv.Itoa(amoAdminUser), false)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, page = amoCard(t, e, amoManagerUser, "leads", f.lead, "ru")
		if strings.Contains(page, "Когда доставка?") || !strings.Contains(page, "Этот диалог ведёт другой сотрудник") || strings.Contains(page, shown) {
			t.Fatalf("own visibility:\n%s", page)
		}
		if st, _ := amoCardSend(t, e, url.Values{"sess": {oldSess}, "target": {target}, "text": {"Чужой"}}, nil); st != http.StatusForbidden {
			t.Fatalf("send into a colleague's dialog: %d", st)
		}
		// The account's admin passes the matrix and visibility.
		if _, page = amoCard(t, e, amoAdminUser, "leads", f.lead, "ru"); !strings.Contains(page, "Когда доставка?") || !strings.Contains(page, shown) {
			t.Fatalf("admin:\n%s", page)
		}
	})
}

// TestAmoCRMCardTenants: a second account's window shows none of the first
// account's customers: not for its own lead with the same number, nor for
// the first account's lead id, nor by a contact link.
func TestAmoCRMCardTenants(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		f := newAmoCardFixture(t, e)
		firstContact := e.Amo.Leads(amoAccount)[0].ContactIDs[0]
		second := installSecondAmoAccount(t, e)
		e.Eventually("second account recorded", func() bool {
			active := 0
			for _, in := range amoIntegrations(t, e) {
				if in["state"] == "active" {
					active++
				}
			}
			return active == 2
		})
		e.WaitIdle()
		var ws2 string
		for _, in := range amoIntegrations(t, e) {
			if in["workspace_id"] != f.ws {
				ws2 = in["workspace_id"].(string)
			}
		}
		// The second account's workspace has a WhatsApp number of its own.
		e.Sim.AddWhatsAppNumber("555000222", "104857392017466", "+7 701 555 00 22", apptest.WAToken)
		st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Второй", "workspace_id": ws2,
			"phone_number_id": "555000222", "waba_id": "104857392017466", "access_token": apptest.WAToken})
		if st != http.StatusCreated {
			t.Fatalf("second account's channel: %d %v", st, body)
		}
		ch2 := body["id"].(string)
		// The same customer's number on a lead of the second account.
		c := e.Amo.PutContact(second.ID, amosim.Contact{Name: "Анна", Phones: []amosim.Value{{Value: "+7 916 123 45 67", EnumCode: "WORK"}}})
		lead := e.Amo.PutLead(second.ID, amosim.Lead{Name: "Анна", StatusID: 61000002, PipelineID: 7000001, ContactIDs: []int{c}})
		open := func(entity string, id int) string {
			t.Helper()
			tok, _, err := e.Amo.DisposableToken(second.ID, amoManagerUser, e.URL)
			if err != nil {
				t.Fatal(err)
			}
			st, body, _ := widgetTicket(t, e, tok, "card")
			if st != http.StatusOK {
				t.Fatalf("ticket of the second account: %d %v", st, body)
			}
			st, page := amoCardGet(t, e, url.Values{"ticket": {body["ticket"].(string)}, "entity": {entity}, "id": {strconv.Itoa(id)}})
			if st != http.StatusOK {
				t.Fatalf("second account's card: %d\n%s", st, page)
			}
			return page
		}
		for name, page := range map[string]string{"own lead, same number": open("leads", lead), "first account's lead id": open("leads", f.lead),
			"first account's contact id": open("contacts", firstContact)} {
			if strings.Contains(page, "Когда доставка?") || strings.Contains(page, f.ch) {
				t.Errorf("%s: the second account sees the first account's customer:\n%s", name, page)
			}
		}
		// It may write to the number on its own channel, not through the
		// first account's.
		page := open("leads", lead)
		if !strings.Contains(page, `value="`+ch2+`|&#43;79161234567"`) {
			t.Fatalf("the second account's own channel is not offered:\n%s", page)
		}
		if _, page = amoCardSend(t, e, url.Values{"sess": {sessOf(t, page)}, "target": {f.ch + "|+79161234567"}, "text": {"x"}}, nil); !strings.Contains(page, "не относится к записи") {
			t.Fatalf("the second account wrote to the first account's customer:\n%s", page)
		}
		// The first account still sees its own.
		if _, page = amoCard(t, e, amoManagerUser, "leads", f.lead, "ru"); !strings.Contains(page, "Когда доставка?") {
			t.Fatalf("first account:\n%s", page)
		}
	})
}

// TestAmoCRMCardInstagramByLink: an Instagram customer has no number; the
// card finds them by the lead and contact the connector linked, and a
// reply goes to their Instagram-scoped id.
func TestAmoCRMCardInstagramByLink(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, _ := installAmoWidget(t, e)
		ig := e.CreateInstagram()
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ig, map[string]any{"mode": "crm"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, v)
		}
		if _, err := e.Sim.SendInstagramText(context.Background(), apptest.IGUserID, "1790001", "Есть в наличии?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("lead", func() bool { return len(e.Amo.Leads(amoAccount)) == 1 })
		e.WaitIdle()
		l := e.Amo.Leads(amoAccount)[0]
		for _, card := range []struct {
			entity string
			id     int
		}{{"leads", l.ID}, {"contacts", l.ContactIDs[0]}} {
			st, page := amoCard(t, e, amoManagerUser, card.entity, card.id, "ru")
			// The customer is offered by their Instagram name.
			if st != http.StatusOK || !strings.Contains(page, "Есть в наличии?") || !strings.Contains(page, `value="`+ig+`|sandbox.customer.790001"`) {
				t.Fatalf("%s card: %d\n%s", card.entity, st, page)
			}
			if card.entity == "contacts" {
				if _, page = amoCardSend(t, e, url.Values{"sess": {sessOf(t, page)}, "target": {ig + "|sandbox.customer.790001"}, "text": {"Да, есть"}}, nil); !strings.Contains(page, "поставлено в очередь") {
					t.Fatalf("reply on Instagram:\n%s", page)
				}
			}
		}
		e.Eventually("sent to Instagram", func() bool {
			for _, m := range e.Messages(ig) {
				if m["direction"] == "out" && m["text"] == "Да, есть" && m["status"] != "queued" && m["status"] != "failed" {
					return true
				}
			}
			return false
		})
	})
}

// TestAmoCRMCardUploadCap: a file over the gateway's upload limit is
// refused in the window's language and nothing is stored or sent; a body
// far over it is cut off while it is read (413).
func TestAmoCRMCardUploadCap(t *testing.T) {
	opts := amoOpts
	opts.Config = func(c *config.Config) { c.UploadMaxBytes = 32 << 10 }
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		f := newAmoCardFixture(t, e)
		st, page := amoCard(t, e, amoManagerUser, "leads", f.lead, "ru")
		if st != http.StatusOK || !strings.Contains(page, `data-max="32768"`) {
			t.Fatalf("card: %d\n%s", st, page)
		}
		sess := sessOf(t, page)
		target := f.ch + "|+79161234567"
		before := len(e.Messages(f.ch))
		st, page = amoCardSend(t, e, url.Values{"sess": {sess}, "target": {target}}, &cardFile{"big.pdf", "application/pdf", bytes.Repeat([]byte("x"), 40<<10)})
		if st != http.StatusUnprocessableEntity || !strings.Contains(page, "Файл слишком большой") {
			t.Fatalf("a file over the limit: %d\n%s", st, page)
		}
		st, page = amoCardSend(t, e, url.Values{"sess": {sess}, "target": {target}}, &cardFile{"huge.pdf", "application/pdf", bytes.Repeat([]byte("x"), 2<<20)})
		if st != http.StatusRequestEntityTooLarge || !strings.Contains(page, "Файл слишком большой") {
			t.Fatalf("a body far over the limit: %d\n%s", st, page)
		}
		if n := len(e.Messages(f.ch)); n != before {
			t.Fatalf("%d messages stored, want %d", n, before)
		}
	})
}

// forgeSignature changes one character well inside a signed value's
// signature, always to another one. Overwriting the last characters is
// not a forgery every time: they may already be those characters, and the
// last base64 character carries padding bits a decoder ignores, so the
// value could still verify (a flaky "forged session: 200").
func forgeSignature(v string) string {
	i := len(v) - 6
	c := byte('A')
	if v[i] == 'A' {
		c = 'B'
	}
	return v[:i] + string(c) + v[i+1:]
}
