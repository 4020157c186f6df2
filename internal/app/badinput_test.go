package app_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/store"
)

func TestWebhookVerification(t *testing.T) {
	e := apptest.Start(t, apptest.Options{NoStart: true})
	cases := []struct {
		query string
		code  int
		body  string
	}{
		{"hub.mode=subscribe&hub.verify_token=" + apptest.VerifyToken + "&hub.challenge=1158201444", 200, "1158201444"},
		{"hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", 403, ""},
		{"hub.mode=unsubscribe&hub.verify_token=" + apptest.VerifyToken + "&hub.challenge=1", 403, ""},
		{"hub.challenge=1", 403, ""},
	}
	for _, c := range cases {
		resp, err := http.Get(e.URL + "/webhooks/meta?" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || (c.body != "" && b.String() != c.body) {
			t.Errorf("%s: %d %q", c.query, resp.StatusCode, b.String())
		}
	}
}

func TestWebhookBadInput(t *testing.T) {
	small := apptest.Options{Config: func(c *config.Config) { c.WebhookMaxBytes = 64 << 10 }}
	apptest.Each(t, small, func(t *testing.T, e *apptest.Env) {
		wa := e.CreateWhatsApp()
		text := fixture(t, "wa-inbound-text.json")
		huge := []byte(`{"object":"whatsapp_business_account","entry":[],"pad":"` + strings.Repeat("x", 70<<10) + `"}`)
		cases := []struct {
			name string
			body []byte
			sig  string
			code int
			err  string
		}{
			{"no signature", text, "", 401, "signature_missing"},
			{"wrong signature", text, "sha256=" + strings.Repeat("0", 64), 401, "signature_invalid"},
			{"signature of other bytes", text, sign(append([]byte(" "), text...)), 401, "signature_invalid"},
			{"sha1 only", text, "sha1=abc", 401, "signature_invalid"},
			{"malformed JSON", []byte(`{"object":"whatsapp_business_account","entry":[`), "", 400, "payload_invalid"},
			{"not an object", []byte(`[1,2,3]`), "", 400, "payload_invalid"},
			{"oversized", huge, "", 413, "body_too_large"},
			{"entry of wrong shape", []byte(`{"object":"whatsapp_business_account","entry":"nope"}`), "", 400, "payload_invalid"},
		}
		for _, c := range cases {
			sig := c.sig
			if sig == "" && c.code != 401 {
				sig = sign(c.body)
			}
			st, body := e.PostWebhookSigned(c.body, sig)
			if st != c.code || errCode(body) != c.err {
				t.Errorf("%s: %d %v, want %d %s", c.name, st, body, c.code, c.err)
			}
		}
		if n := len(e.Messages(wa)); n != 0 {
			t.Fatalf("refused deliveries stored %d messages", n)
		}

		// Accepted with 200 (so Meta keeps the webhook), and kept:
		accepted := []struct {
			name string
			body string
		}{
			{"unknown object", `{"object":"page","entry":[]}`},
			{"unknown channel", strings.Replace(string(text), "109283746501928", "999999999999999", 1)},
			{"unknown message type", `{"object":"whatsapp_business_account","entry":[{"id":"104857392017465","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"109283746501928"},"messages":[{"from":"79161234567","id":"wamid.NEWTYPE","timestamp":"1767600000","type":"poll","poll":{"q":"?"}}]}}]}]}`},
			{"message without type", `{"object":"whatsapp_business_account","entry":[{"id":"104857392017465","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"109283746501928"},"messages":[{"from":"79161234567","id":"wamid.NOTYPE","timestamp":"1767600000"}]}}]}]}`},
			{"other field", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{"event":"X"}}]}]}`},
		}
		for _, c := range accepted {
			st, body := e.PostWebhook([]byte(c.body))
			if st != http.StatusOK {
				t.Errorf("%s: %d %v", c.name, st, body)
			}
		}
		var unrouted int64
		e.App.DB.Gorm.Model(&store.UnroutedEvent{}).Where("account_id = ?", "999999999999999").Count(&unrouted)
		if unrouted != 1 {
			t.Errorf("delivery for an unknown channel not kept: %d rows", unrouted)
		}
		for _, ext := range []string{"wamid.NEWTYPE", "wamid.NOTYPE"} {
			m := findMsg(e.Messages(wa), byExternal(ext))
			if m == nil || m["type"] != "unsupported" {
				t.Errorf("%s should be stored as unsupported: %v", ext, m)
			}
		}
	})
}

func sign(b []byte) string {
	return apptest.Sign(b)
}

func TestTenantsAreApart(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		_, a := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Филиал Алматы", "timezone": "Asia/Almaty"})
		_, b := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Филиал Москва", "timezone": "Europe/Moscow"})
		wsA, wsB := a["id"].(string), b["id"].(string)
		_, ta := e.Do("POST", "/api/v1/workspaces/"+wsA+"/tokens", map[string]any{"name": "crm"})
		_, tb := e.Do("POST", "/api/v1/workspaces/"+wsB+"/tokens", nil)
		tokA, tokB := ta["token"].(string), tb["token"].(string)

		chA := e.CreateWhatsApp(tokA)
		_, chv := e.Do("GET", "/api/v1/channels/"+chA, nil, tokA)
		if chv["workspace_id"] != wsA {
			t.Fatalf("channel created by A's token landed in %v", chv["workspace_id"])
		}
		if _, ok := chv["access_token"]; ok {
			t.Fatal("the API returned the access token")
		}
		var stored string
		e.App.DB.Gorm.Raw("SELECT access_token FROM channels WHERE id = ?", chA).Scan(&stored)
		if stored == "" || strings.Contains(stored, apptest.WAToken) {
			t.Fatalf("access token not encrypted at rest: %q", stored)
		}
		e.Sim.SendWhatsAppText(t.Context(), apptest.PhoneNumberID, customer, "Анна", "Привет")
		e.Eventually("inbound", func() bool { return len(e.Messages(chA)) == 1 })

		// B sees nothing of A's, and cannot act through it.
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/channels/" + chA},
			{"GET", "/api/v1/channels/" + chA + "/messages"},
			{"PATCH", "/api/v1/channels/" + chA},
			{"DELETE", "/api/v1/channels/" + chA},
			{"POST", "/api/v1/channels/" + chA + "/messages"},
			{"GET", "/api/v1/messages/" + e.Messages(chA)[0]["id"].(string)},
			{"GET", "/api/v1/workspaces/" + wsA},
			{"POST", "/api/v1/workspaces/" + wsA + "/tokens"},
		} {
			var body any
			if c.method == "POST" || c.method == "PATCH" {
				body = map[string]any{"to": customer, "text": "чужой канал"}
				if c.method == "PATCH" || strings.HasSuffix(c.path, "tokens") {
					body = map[string]any{"name": "x"}
				}
			}
			st, resp := e.Do(c.method, c.path, body, tokB)
			if st != http.StatusNotFound {
				t.Errorf("B %s %s: %d %v, want 404", c.method, c.path, st, resp)
			}
		}
		st, list := e.Do("GET", "/api/v1/channels", nil, tokB)
		if st != 200 || len(list["data"].([]any)) != 0 {
			t.Errorf("B lists A's channels: %v", list)
		}
		st, _ = e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "x", "ig_user_id": "1", "access_token": "t", "workspace_id": wsA}, tokB)
		if st != http.StatusNotFound {
			t.Errorf("B created a channel in A: %d", st)
		}
		st, _ = e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "x"}, tokB)
		if st != http.StatusForbidden {
			t.Errorf("a workspace token created a workspace: %d", st)
		}
		st, ws := e.Do("GET", "/api/v1/workspaces", nil, tokB)
		if st != 200 || len(ws["data"].([]any)) != 1 {
			t.Errorf("B lists workspaces: %v", ws)
		}
		// The operator sees both.
		st, list = e.Do("GET", "/api/v1/channels?workspace_id="+wsA, nil)
		if st != 200 || len(list["data"].([]any)) != 1 {
			t.Errorf("operator list of A: %v", list)
		}
		if sent := graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages"); len(sent) != 0 {
			t.Fatalf("B's attempts reached Meta: %d", len(sent))
		}
	})
}

func TestAPIValidation(t *testing.T) {
	e := apptest.Start(t, apptest.Options{NoStart: true})
	wa := e.CreateWhatsApp()
	// A fresh message opens the 24-hour window (the fixtures' are old).
	if _, err := e.Sim.SendWhatsAppText(t.Context(), apptest.PhoneNumberID, customer, "Анна", "Привет"); err != nil {
		t.Fatal(err)
	}
	inbound := e.Messages(wa)[0]["id"].(string)
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		token  string
		code   int
		err    string
	}{
		{"no token", "GET", "/api/v1/channels", nil, "-", 401, "unauthorized"},
		{"bad token", "GET", "/api/v1/channels", nil, "nope", 401, "unauthorized"},
		{"unknown route", "GET", "/api/v1/nothing", nil, "", 404, "not_found"},
		{"channel type", "POST", "/api/v1/channels", map[string]any{"type": "telegram", "name": "x", "access_token": "t"}, "", 422, "type_invalid"},
		{"channel name", "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "phone_number_id": "1", "access_token": "t"}, "", 422, "name_invalid"},
		{"channel token", "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "x", "phone_number_id": "1"}, "", 422, "access_token_required"},
		{"phone number id", "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "x", "phone_number_id": "+7 701", "access_token": "t"}, "", 422, "phone_number_id_invalid"},
		{"unknown field", "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "x", "phone_number_id": "1", "access_token": "t", "colour": "red"}, "", 400, "invalid_json"},
		{"malformed json", "POST", "/api/v1/channels", "{", "", 400, "invalid_json"},
		{"duplicate number", "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "x", "phone_number_id": apptest.PhoneNumberID, "waba_id": apptest.WabaID, "access_token": apptest.WAToken}, "", 409, "channel_exists"},
		{"number with a token Meta refuses", "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "x", "phone_number_id": apptest.PhoneNumberID, "waba_id": apptest.WabaID, "access_token": "t"}, "", 422, "account_not_verified"},
		{"no waba", "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "x", "phone_number_id": apptest.PhoneNumberID, "access_token": apptest.WAToken}, "", 422, "waba_id_required"},
		{"timezone", "POST", "/api/v1/workspaces", map[string]any{"name": "x", "timezone": "Mars/Olympus"}, "", 422, "timezone_invalid"},
		{"missing channel", "GET", "/api/v1/channels/01M84V3BMG32ZGESSX3PYXJWM8", nil, "", 404, "not_found"},
		{"limit", "GET", "/api/v1/channels/" + wa + "/messages?limit=501", nil, "", 400, "limit_invalid"},
		{"cursor", "GET", "/api/v1/channels/" + wa + "/messages?cursor=x'--", nil, "", 400, "cursor_invalid"},
		{"no to", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"text": "x"}, "", 422, "to_required"},
		{"bad phone", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": "позвоните мне", "text": "x"}, "", 422, "invalid_phone"},
		{"no content", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": customer}, "", 422, "text_required"},
		{"too long", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": customer, "text": strings.Repeat("я", 4097)}, "", 422, "text_too_long"},
		{"media and template", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": customer, "media": map[string]any{"url": "https://x/y.jpg"}, "template": map[string]any{"name": "a", "language": "ru"}}, "", 422, "ambiguous_message"},
		{"media url", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": customer, "media": map[string]any{"url": "file:///etc/passwd"}}, "", 422, "media_url_invalid"},
		{"reply to unknown", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": customer, "text": "x", "reply_to": "01M84V3BMG32ZGESSX3PYXJWM8"}, "", 422, "reply_to_not_found"},
		{"template incomplete", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": customer, "template": map[string]any{"name": "a"}}, "", 422, "template_invalid"},
		{"ok reply", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": customer, "text": "x", "reply_to": inbound}, "", 202, ""},
		{"ok media by link", "POST", "/api/v1/channels/" + wa + "/messages", map[string]any{"to": customer, "media": map[string]any{"url": "https://cdn.example/p.jpg", "caption": "фото"}}, "", 202, ""},
	}
	for _, c := range cases {
		var st int
		var body map[string]any
		switch c.token {
		case "-":
			st, body = e.Do(c.method, c.path, c.body, "")
		case "":
			st, body = e.Do(c.method, c.path, c.body)
		default:
			st, body = e.Do(c.method, c.path, c.body, c.token)
		}
		if st != c.code || errCode(body) != c.err {
			t.Errorf("%s: %d %v, want %d %q", c.name, st, body, c.code, c.err)
		}
		if c.code >= 400 && get(body, "error", "message") == "" {
			t.Errorf("%s: error without a message: %v", c.name, body)
		}
	}
	// Pagination walks every message exactly once, newest first.
	for i := 0; i < 5; i++ {
		e.Do("POST", "/api/v1/channels/"+wa+"/messages", map[string]any{"to": customer, "text": "page"})
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		q := url.Values{"limit": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		_, page := e.Do("GET", "/api/v1/channels/"+wa+"/messages?"+q.Encode(), nil)
		for _, m := range page["data"].([]any) {
			id := m.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("message %s on two pages", id)
			}
			seen[id] = true
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 8 {
		t.Fatalf("pagination saw %d messages, want 8", len(seen))
	}
}
