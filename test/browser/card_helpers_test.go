package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/test/browsertest"
)

// The card window is tested in a real browser (test/browsertest). The
// helpers here carry a card prefix: other browser tests share this
// package.

// The amoCRM account of the card tests: the simulator's example account.
const (
	cardAccount = 30123456
	cardAdmin   = 9000001
	cardManager = 9000002
)

// cardDo calls the gateway's admin API and fails the test on another
// status than want.
func cardDo(t *testing.T, e *apptest.Env, want int, method, path string, body any) map[string]any {
	t.Helper()
	st, v := e.Do(method, path, body)
	if st != want {
		t.Fatalf("%s %s: %d %v", method, path, st, v)
	}
	return v
}

// cardInstall adds the example account, installs the widget as amoCRM
// does, binds a WhatsApp channel in CRM mode and syncs its templates and
// the account's users. It returns the integration, workspace and channel.
func cardInstall(t *testing.T, e *apptest.Env) (string, string, string) {
	t.Helper()
	if err := e.Amo.AddAccount(amosim.ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	q, err := e.Amo.InstallRedirect(cardAccount)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.URL + "/amocrm/oauth/callback?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var integ, ws string
	e.Eventually("account recorded", func() bool {
		_, list := e.Do("GET", "/api/v1/integrations", nil)
		items, _ := list["data"].([]any)
		for _, v := range items {
			if m := v.(map[string]any); m["type"] == "amocrm" && m["state"] == "active" {
				integ, ws = m["id"].(string), m["workspace_id"].(string)
			}
		}
		return integ != ""
	})
	e.WaitIdle()
	ch := e.CreateWhatsAppIn(ws)
	cardDo(t, e, http.StatusOK, "PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm"})
	cardDo(t, e, http.StatusOK, "POST", "/api/v1/channels/"+ch+"/templates/refresh", nil)
	cardDo(t, e, http.StatusOK, "POST", "/api/v1/integrations/"+integ+"/refresh", nil)
	return integ, ws, ch
}

// cardBrowser starts a headless Chromium the size of amoCRM's card
// column.
func cardBrowser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.New(t, browsertest.Size(360, 520), browsertest.Timeout(60*time.Second))
}

// cardURL buys a ticket with the widget's disposable token of user, as the
// widget's script does, and returns the card window's address for the
// lead.
func cardURL(t *testing.T, e *apptest.Env, user, lead int, lang string) string {
	t.Helper()
	ticket := widgetTicket(t, e, cardAccount, user, "card")
	return e.URL + "/amocrm/card?" + url.Values{"ticket": {ticket}, "entity": {"leads"}, "id": {strconv.Itoa(lead)}, "lang": {lang}}.Encode()
}

// widgetTicket trades a disposable token of the account's user for a
// ticket of purpose ("card" or "settings"), as the widget's script does
// from the account's page.
func widgetTicket(t *testing.T, e *apptest.Env, account, user int, purpose string) string {
	t.Helper()
	tok, _, err := e.Amo.DisposableToken(account, user, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/amocrm/widget/ticket", strings.NewReader(url.Values{"purpose": {purpose}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.AmoURL)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var got struct {
		Ticket string `json:"ticket"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Ticket == "" {
		t.Fatalf("ticket: %d %s", resp.StatusCode, b)
	}
	return got.Ticket
}

// cardQuickReply adds a quick reply with a small PDF to the workspace by
// the admin API (multipart).
func cardQuickReply(t *testing.T, e *apptest.Env, ws, title, text, filename string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range map[string]string{"title": title, "text": text, "workspace_id": ws} {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+filename+`"`)
	h.Set("Content-Type", "application/pdf")
	part, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write([]byte("%PDF-1.4\nprice list\n%%EOF")); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, e.URL+"/api/v1/quick-replies", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+apptest.AdminToken)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("quick reply: %d %s", resp.StatusCode, b)
	}
}
