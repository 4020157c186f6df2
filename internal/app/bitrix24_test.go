package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/store"
)

var b24Opts = apptest.Options{Bitrix24: true}

// createWAIn creates the fixtures' WhatsApp channel in a workspace (kept
// as a name for the many tests that call it; the helper is apptest's).
func createWAIn(t *testing.T, e *apptest.Env, ws string) string {
	t.Helper()
	return e.CreateWhatsAppIn(ws)
}

func bindLine(t *testing.T, e *apptest.Env, integration, ch, line string) {
	t.Helper()
	st, body := e.Do("PUT", "/api/v1/integrations/"+integration+"/channels/"+ch, map[string]any{"mode": "openlines", "line_id": line})
	if st != http.StatusOK {
		t.Fatalf("bind: %d %v", st, body)
	}
	e.Eventually("line activated", func() bool {
		s := e.Portal.ConnectorStatus("switchboard_whatsapp", 1)
		return s.Active && s.Configured
	})
}

func inboundOnLine(e *apptest.Env, line int) []b24sim.Message {
	var out []b24sim.Message
	for _, m := range e.B24.Line(apptest.B24MemberID, line).Messages() {
		if m.Direction == b24sim.Inbound {
			out = append(out, m)
		}
	}
	return out
}

// The path the issue describes: install → activate a line → an inbound
// WhatsApp message appears in the line with the customer's name and phone
// → the operator replies → the Graph request goes out → delivered and
// read reach the line.
func TestBitrix24OpenLinesConversation(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		_, iv := e.Do("GET", "/api/v1/integrations/"+integ, nil)
		if iv["state"] != "active" || iv["domain"] == "" {
			t.Fatalf("integration: %v", iv)
		}
		if _, ok := iv["access_token"]; ok {
			t.Fatal("integration view shows a token")
		}
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		if src := e.B24.Line(apptest.B24MemberID, 1).CRMSource(); src != "WHATSAPP" {
			t.Fatalf("the line's CRM source is %q: leads it creates would not carry the channel", src)
		}

		wamid, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна Смирнова", "Здравствуйте! Заказ 4512 ещё в пути?")
		if err != nil {
			t.Fatal(err)
		}
		var in b24sim.Message
		e.Eventually("message in the open line", func() bool {
			ms := inboundOnLine(e, 1)
			if len(ms) == 1 {
				in = ms[0]
			}
			return len(ms) == 1
		})
		if in.User.Name != "Анна" || in.User.LastName != "Смирнова" || in.User.Phone != "+79161234567" ||
			in.Text != "Здравствуйте! Заказ 4512 ещё в пути?" || in.ExternalID != wamid || in.IMChatID == "" {
			t.Fatalf("line got %+v", in)
		}

		imMsg, err := e.B24.OperatorReply(context.Background(), apptest.B24MemberID, "1", in.ChatID, "Добрый день! Заказ уже в Алматы.")
		if err != nil {
			t.Fatal(err)
		}
		path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
		e.Eventually("reply sent through the Graph API", func() bool { return len(graphSends(e.Sim, path)) == 1 })
		// The operator's signature is dropped (the binding did not ask for it).
		jsonEq(t, graphSends(e.Sim, path)[0].Body, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text",
			"text":{"body":"Добрый день! Заказ уже в Алматы.","preview_url":false}}`)
		e.Eventually("delivered and read reach the line", func() bool {
			line := e.B24.Line(apptest.B24MemberID, 1)
			return len(line.Deliveries()) == 1 && len(line.Reads()) == 1
		})
		d := e.B24.Line(apptest.B24MemberID, 1).Deliveries()[0]
		if d.IMMessageID != imMsg || d.IMChatID != in.IMChatID || len(d.ExternalIDs) != 1 || !strings.HasPrefix(d.ExternalIDs[0], "wamid.") {
			t.Fatalf("delivery report %+v (operator message %s)", d, imMsg)
		}

		// Outside the 24-hour window the reply cannot go; the chat is told.
		e.App.DB.Gorm.Model(&store.Contact{}).Where("channel_id = ?", ch).Update("last_inbound_at", time.Now().Add(-25*time.Hour))
		if _, err := e.B24.OperatorReply(context.Background(), apptest.B24MemberID, "1", in.ChatID, "Вы ещё здесь?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("failure written into the chat", func() bool {
			for _, m := range e.Portal.ChatMessages() {
				if m.DialogID == "chat"+in.IMChatID && strings.Contains(m.Message, "24") {
					return true
				}
			}
			return false
		})
		if n := len(graphSends(e.Sim, path)); n != 1 {
			t.Fatalf("a reply outside the window reached Meta (%d sends)", n)
		}
	})
}

func TestBitrix24RejectsForgedAndMalformedInput(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	integ, _ := e.InstallBitrix24()
	send := func(path, body string) int {
		req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	event := func(member, token string) string {
		return url.Values{"event": {"ONIMCONNECTORMESSAGEADD"}, "data[CONNECTOR]": {"switchboard_whatsapp"}, "data[LINE]": {"1"},
			"data[MESSAGES][0][im][chat_id]": {"1"}, "data[MESSAGES][0][im][message_id]": {"9"},
			"data[MESSAGES][0][message][text]": {"hi"}, "data[MESSAGES][0][chat][id]": {"x"},
			"auth[member_id]": {member}, "auth[application_token]": {token}}.Encode()
	}
	deepNested := "a" + strings.Repeat("[a]", 340000) + "=1"
	cases := []struct {
		name, path, body string
		want             int
	}{
		{"wrong application token", "/bitrix24/events", event(apptest.B24MemberID, "forged"), 401},
		{"no application token", "/bitrix24/events", event(apptest.B24MemberID, ""), 401},
		{"unknown portal", "/bitrix24/events", event("ffffffffffffffffffffffffffffffff", apptest.B24AppToken), 401},
		{"no event name", "/bitrix24/events", "auth[member_id]=" + apptest.B24MemberID, 400},
		{"malformed form", "/bitrix24/events", "%zz", 400},
		{"oversized", "/bitrix24/events", "event=X&pad=" + strings.Repeat("a", 2<<20), 413},
		{"install with a made-up token", "/bitrix24/install", url.Values{"event": {"ONAPPINSTALL"}, "auth[member_id]": {apptest.B24MemberID},
			"auth[refresh_token]": {"made-up"}, "auth[application_token]": {"x"}, "auth[client_endpoint]": {"http://169.254.169.254/rest/"}}.Encode(), 401},
		// One key nested 340,000 levels (~1 MiB): refused before it is
		// decoded, on every form endpoint that runs before authentication.
		{"deeply nested install", "/bitrix24/install", deepNested, 400},
		{"deeply nested event", "/bitrix24/events", deepNested, 400},
		{"deeply nested robot run", "/bitrix24/robot", deepNested, 400},
		{"install without member id", "/bitrix24/install", url.Values{"event": {"ONAPPINSTALL"}, "auth[refresh_token]": {"r"}}.Encode(), 400},
	}
	for _, c := range cases {
		if got := send(c.path, c.body); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// A real token for this portal presented as another portal's install.
	_, refresh := e.B24.InstallTokens(apptest.B24MemberID)
	other := url.Values{"event": {"ONAPPINSTALL"}, "auth[member_id]": {"0123456789abcdef0123456789abcdef"},
		"auth[refresh_token]": {refresh}, "auth[application_token]": {"x"}}.Encode()
	if got := send("/bitrix24/install", other); got != 401 {
		t.Errorf("install with another portal's token: %d", got)
	}
	var events int64
	e.App.DB.Gorm.Model(&store.CRMEvent{}).Where("integration_id = ?", integ).Count(&events)
	if events != 0 {
		t.Fatalf("%d forged events stored", events)
	}
	// The gateway called nothing but the simulator: no request went to the
	// metadata address the forged install named.
	for _, r := range e.B24.Requests() {
		if strings.Contains(r.Path, "169.254") {
			t.Fatalf("forged endpoint used: %+v", r)
		}
	}
}
