package metasim

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWhatsAppSendTextShape(t *testing.T) {
	env := newSim(t, Options{})
	if _, err := env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "Анна", "Привет"); err != nil {
		t.Fatal(err)
	}
	status, body := env.sendWA(t, textTo("+7 916 123-45-67", "Здравствуйте!"))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	assertSameShape(t, body, "wa-send-response.json")
	var resp waSendResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if got := resp.Contacts[0]; got.Input != "+7 916 123-45-67" || got.WaID != testCustomer {
		t.Errorf("contacts[0] = %+v", got)
	}
	if id := resp.Messages[0].ID; !strings.HasPrefix(id, "wamid.") || len(id) < 30 {
		t.Errorf("wamid %q", id)
	}
	if resp.Messages[0].MessageStatus != "" {
		t.Errorf("free-form send must not carry message_status, got %q", resp.Messages[0].MessageStatus)
	}
	env.sim.Wait()
	if n := len(env.gw.received()); n != 1 { // only the inbound; AutoStatuses is off
		t.Errorf("gateway got %d deliveries, want 1", n)
	}
}

func TestWhatsAppSendTemplateAccepted(t *testing.T) {
	env := newSim(t, Options{})
	// No inbound at all: templates are the one thing allowed outside the window.
	status, body := env.sendWA(t, templateTo(testCustomer))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	assertSameShape(t, body, "wa-send-template-response.json")
	if !strings.Contains(string(body), `"message_status":"accepted"`) {
		t.Errorf("template response lacks message_status accepted: %s", body)
	}
	env.sim.Wait()
	if got := env.gw.received(); len(got) != 0 {
		t.Errorf("template outside window must not fail; deliveries: %q", got)
	}
}

// A template send is checked against the WABA's approved templates as
// Graph checks it: an unknown or unapproved name/language is 132001, body
// or text-header parameters unlike the template's variables 132000, a
// media header without its file 132012.
func TestWhatsAppTemplateRefusals(t *testing.T) {
	env := newSim(t, Options{PairLimit: PairLimit{Disabled: true}})
	tpl := func(name, lang string, comps ...any) map[string]any {
		return map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "template",
			"template": map[string]any{"name": name, "language": map[string]any{"code": lang}, "components": comps}}
	}
	text := func(vs ...string) []any {
		var out []any
		for _, v := range vs {
			out = append(out, map[string]any{"type": "text", "text": v})
		}
		return out
	}
	body := func(vs ...string) any { return map[string]any{"type": "body", "parameters": text(vs...)} }
	header := func(vs ...string) any { return map[string]any{"type": "header", "parameters": text(vs...)} }
	env.sim.SetTemplates(testWABA, append(DefaultTemplates(), Template{Name: "promo_photo", Language: "ru", Category: "MARKETING", Status: "APPROVED",
		Components: []map[string]any{{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Скидки!"}}}))
	image := map[string]any{"type": "header", "parameters": []any{map[string]any{"type": "image", "image": map[string]any{"link": "https://x.test/a.jpg"}}}}
	for _, c := range []struct {
		name    string
		req     map[string]any
		code    int
		details string
	}{
		{"unknown name", tpl("made_up", "ru"), 132001, "template name (made_up) does not exist in ru"},
		{"other language", tpl("order_update", "en", body("a", "b")), 132001, "does not exist in en"},
		{"pending review", tpl("appointment_reminder", "ru", body("a", "b")), 132001, "appointment_reminder"},
		{"body short", tpl("order_update", "ru", body("a")), 132000, "body: number of localizable_params (1) does not match the expected number of params (2)"},
		{"body long", tpl("order_update", "ru", body("a", "b", "c")), 132000, "(3)"},
		{"header variables in the body", tpl("spring_sale", "en_US", body("Anna", "20%", "May")), 132000, "header: number of localizable_params (0)"},
		{"media header missing", tpl("promo_photo", "ru"), 132012, "expected IMAGE, received UNKNOWN"},
		{"ok: body", tpl("order_update", "ru", body("a", "b")), 0, ""},
		{"ok: header and body", tpl("spring_sale", "en_US", header("Anna"), body("20%", "May")), 0, ""},
		{"ok: media header", tpl("promo_photo", "ru", image), 0, ""},
	} {
		status, raw := env.sendWA(t, c.req)
		if c.code == 0 {
			if status != http.StatusOK {
				t.Errorf("%s: %d %s", c.name, status, raw)
			}
			continue
		}
		var e apiError
		if err := json.Unmarshal(raw, &e); err != nil || status != http.StatusBadRequest || e.Error.Code != c.code || !strings.Contains(string(raw), c.details) {
			t.Errorf("%s: %d %s, want 400 with %d and %q", c.name, status, raw, c.code, c.details)
		}
	}
}

// TestWhatsAppFixtureRequestsAccepted replays every send request fixture:
// what the contract documents as valid must be valid for the simulator.
func TestWhatsAppFixtureRequestsAccepted(t *testing.T) {
	env := newSim(t, Options{PairLimit: PairLimit{Disabled: true}})
	// The template fixture's own approved template: an image header, two
	// body variables and two buttons.
	env.sim.SetTemplates(testWABA, append(DefaultTemplates(), Template{ID: "1000000000000009", Name: "order_shipped", Language: "ru",
		Category: "UTILITY", Status: "APPROVED", Components: []map[string]any{
			{"type": "HEADER", "format": "IMAGE"},
			{"type": "BODY", "text": "{{1}}, заказ {{2}} отправлен."},
			{"type": "BUTTONS", "buttons": []map[string]any{{"type": "QUICK_REPLY", "text": "Перенести"}, {"type": "URL", "text": "Отследить", "url": "https://shop.example.kz/t/{{1}}"}}},
		}}))
	files := []string{
		"wa-send-text-request.json", "wa-send-reply-request.json", "wa-send-image-link-request.json",
		"wa-send-document-id-request.json", "wa-send-voice-id-request.json", "wa-send-template-request.json",
		"wa-send-reaction-request.json", "wa-send-interactive-buttons-request.json",
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			var req map[string]any
			if err := json.Unmarshal(fixture(t, name), &req); err != nil {
				t.Fatal(err)
			}
			to, _ := req["to"].(string)
			if _, err := env.sim.SendWhatsAppText(context.Background(), testPhoneID, to, "Customer", "hi"); err != nil {
				t.Fatal(err)
			}
			// Media ids in fixtures are fake; swap in one the simulator knows.
			for _, kind := range []string{"document", "audio"} {
				if m, ok := req[kind].(map[string]any); ok && m["id"] != nil {
					m["id"] = env.sim.storeMedia(testPhoneID, "application/pdf", "f.pdf", []byte("%PDF")).id
				}
			}
			status, body := env.sendWA(t, req)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
		})
	}
}

func TestWhatsAppInvalidParams(t *testing.T) {
	long := strings.Repeat("a", 4097)
	tests := []struct {
		name    string
		body    any
		details string // substring of error_data.details
	}{
		{"invalid JSON", "{", "not valid JSON"},
		{"missing messaging_product", map[string]any{"to": testCustomer, "type": "text", "text": map[string]any{"body": "x"}}, "messaging_product"},
		{"missing to", map[string]any{"messaging_product": "whatsapp", "type": "text", "text": map[string]any{"body": "x"}}, "'to'"},
		{"to not a number", textTo("not-a-phone", "x"), "not a valid WhatsApp phone number"},
		{"to too short", textTo("+7 916", "x"), "not a valid WhatsApp phone number"},
		{"to as JSON number", map[string]any{"messaging_product": "whatsapp", "to": 79161234567, "type": "text", "text": map[string]any{"body": "x"}}, "not valid JSON"},
		{"recipient_type group", map[string]any{"messaging_product": "whatsapp", "recipient_type": "group", "to": testCustomer, "text": map[string]any{"body": "x"}}, "recipient_type"},
		{"empty text", textTo(testCustomer, ""), "text.body"},
		{"text over 4096", textTo(testCustomer, long), "4096"},
		{"unknown type", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "hologram"}, "'type'"},
		{"type without object", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "image"}, "'image' is required"},
		{"media neither id nor link", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "image", "image": map[string]any{"caption": "c"}}, "'id' or 'link'"},
		{"media id and link", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "image", "image": map[string]any{"id": "1", "link": "https://x.test/a.jpg"}}, "not both"},
		{"unknown media id", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "image", "image": map[string]any{"id": "1234567890123456"}}, "not a valid media id"},
		{"media link not http", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "image", "image": map[string]any{"link": "ftp://x.test/a.jpg"}}, "link"},
		{"caption on audio", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "audio", "audio": map[string]any{"link": "https://x.test/a.ogg", "caption": "c"}}, "caption"},
		{"template without name", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "template", "template": map[string]any{"language": map[string]any{"code": "ru"}}}, "template.name"},
		{"template without language", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "template", "template": map[string]any{"name": "t"}}, "language.code"},
		{"template numeric button index", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "template", "template": map[string]any{
			"name": "t", "language": map[string]any{"code": "ru"},
			"components": []any{map[string]any{"type": "button", "sub_type": "quick_reply", "index": 0, "parameters": []any{map[string]any{"type": "payload", "payload": "p"}}}},
		}}, "index"},
		{"template param without value", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "template", "template": map[string]any{
			"name": "t", "language": map[string]any{"code": "ru"},
			"components": []any{map[string]any{"type": "body", "parameters": []any{map[string]any{"type": "text"}}}},
		}}, "parameters[0].text"},
		{"reaction without message_id", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "reaction", "reaction": map[string]any{"emoji": "👍"}}, "reaction.message_id"},
		{"context without message_id", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "context": map[string]any{}, "text": map[string]any{"body": "x"}}, "context.message_id"},
		{"four reply buttons", map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "interactive", "interactive": map[string]any{
			"type": "button", "body": map[string]any{"text": "b"},
			"action": map[string]any{"buttons": []any{btn("1"), btn("2"), btn("3"), btn("4")}},
		}}, "1 to 3"},
		{"mark read without message_id", map[string]any{"messaging_product": "whatsapp", "status": "read"}, "message_id"},
		{"bad status value", map[string]any{"messaging_product": "whatsapp", "status": "delivered", "message_id": "wamid.x"}, "'status'"},
		{"mark read of a non-wamid", map[string]any{"messaging_product": "whatsapp", "status": "read", "message_id": "m_abc"}, "message_id"},
	}
	env := newSim(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := env.sendWA(t, tc.body)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", status, body)
			}
			e := decodeError(t, body)
			if e.Error.Code != 100 || e.Error.Type != "OAuthException" || e.Error.Message != "(#100) Invalid parameter" {
				t.Errorf("error = %+v", e.Error)
			}
			if e.Error.ErrorData == nil || e.Error.ErrorData.MessagingProduct != "whatsapp" || !strings.Contains(e.Error.ErrorData.Details, tc.details) {
				t.Errorf("error_data = %+v, want details containing %q", e.Error.ErrorData, tc.details)
			}
			assertSameShape(t, body, "wa-error-100-invalid-param.json")
		})
	}
	if got := len(env.sim.Requests()); got != len(tests) {
		t.Errorf("recorded %d requests, want %d", got, len(tests))
	}
}

func btn(id string) map[string]any {
	return map[string]any{"type": "reply", "reply": map[string]any{"id": id, "title": "B" + id}}
}

func TestWhatsAppTextLimitCountsCharacters(t *testing.T) {
	env := newSim(t, Options{})
	env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi")
	// 4096 Cyrillic letters are 8192 bytes: the limit is in characters.
	status, body := env.sendWA(t, textTo(testCustomer, strings.Repeat("я", 4096)))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
}

func TestWhatsAppMarkRead(t *testing.T) {
	env := newSim(t, Options{})
	status, body := env.sendWA(t, fixture(t, "wa-mark-read-request.json"))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	if string(body) != `{"success":true}` {
		t.Errorf("body %s", body)
	}
	assertSameShape(t, body, "wa-mark-read-response.json")
	// Recorded for tests (and the demo's phone) to see.
	marks := env.sim.ReadMarks()
	if len(marks) != 1 || marks[0].PhoneNumberID != testPhoneID || !strings.HasPrefix(marks[0].MessageID, "wamid.") {
		t.Errorf("read marks %+v", marks)
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		header     string // Authorization value
		expire     bool
		wantStatus int
		wantCode   int
		wantSub    int
	}{
		{"bearer ok", "/v25.0/" + testPhoneID + "/messages", "Bearer " + testWAToken, false, 200, 0, 0},
		{"lower-case scheme ok", "/v25.0/" + testPhoneID + "/messages", "bearer " + testWAToken, false, 200, 0, 0},
		{"query token ok", "/v21.0/" + testPhoneID + "/messages?access_token=" + testWAToken, "", false, 200, 0, 0},
		{"no token", "/v25.0/" + testPhoneID + "/messages", "", false, 401, 104, 0},
		{"unknown token", "/v25.0/" + testPhoneID + "/messages", "Bearer nope", false, 401, 190, 0},
		{"expired token", "/v25.0/" + testPhoneID + "/messages", "Bearer " + testWAToken, true, 401, 190, 463},
		{"token of another account", "/v25.0/" + testPhoneID + "/messages", "Bearer " + testIGToken, false, 400, 100, 33},
		{"unknown number", "/v25.0/999999999/messages", "Bearer " + testWAToken, false, 400, 100, 33},
		{"missing version", "/" + testPhoneID + "/messages", "Bearer " + testWAToken, false, 400, 2500, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newSim(t, Options{})
			env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi")
			if tc.expire {
				env.sim.ExpireToken(testWAToken)
			}
			req, _ := http.NewRequest(http.MethodPost, env.srv.URL+tc.path, strings.NewReader(`{"messaging_product":"whatsapp","to":"79161234567","type":"text","text":{"body":"hi"}}`))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := env.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var raw json.RawMessage
			json.NewDecoder(resp.Body).Decode(&raw)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, raw)
			}
			if tc.wantCode == 0 {
				return
			}
			e := decodeError(t, raw)
			if e.Error.Code != tc.wantCode || e.Error.Subcode != tc.wantSub {
				t.Errorf("code %d/%d, want %d/%d: %s", e.Error.Code, e.Error.Subcode, tc.wantCode, tc.wantSub, raw)
			}
			if tc.expire {
				assertSameShape(t, raw, "wa-error-190-token-expired.json")
				if !strings.HasPrefix(e.Error.Message, "Error validating access token: Session has expired on ") {
					t.Errorf("message %q", e.Error.Message)
				}
			}
		})
	}
}

func TestThroughputLimit(t *testing.T) {
	env := newSim(t, Options{ThroughputPerSecond: 5, PairLimit: PairLimit{Disabled: true}})
	env.sim.AddWhatsAppNumber("200000000000001", testWABA, "+77010000001", testWAToken)
	send := func(phoneID string, i int) (int, []byte) {
		return env.call(t, http.MethodPost, "/v25.0/"+phoneID+"/messages", testWAToken, templateTo("7707000000"+string(rune('0'+i))))
	}
	for i := range 5 {
		if status, body := send(testPhoneID, i); status != 200 {
			t.Fatalf("send %d: status %d: %s", i, status, body)
		}
	}
	status, body := send(testPhoneID, 5)
	if status != http.StatusBadRequest {
		t.Fatalf("6th send: status %d, want 400: %s", status, body)
	}
	if e := decodeError(t, body); e.Error.Code != 130429 || e.Error.Message != "(#130429) Rate limit hit" {
		t.Errorf("error %+v", e.Error)
	}
	assertSameShape(t, body, "wa-error-130429.json")

	// The limit is per phone number.
	if status, body := send("200000000000001", 0); status != 200 {
		t.Errorf("other number: status %d: %s", status, body)
	}
	env.clock.Advance(time.Second)
	if status, body := send(testPhoneID, 6); status != 200 {
		t.Errorf("after 1s: status %d: %s", status, body)
	}
}

func TestPairLimit(t *testing.T) {
	t.Run("enforced", func(t *testing.T) {
		env := newSim(t, Options{PairLimit: PairLimit{Burst: 2, Interval: 6 * time.Second}})
		for i := range 2 {
			if status, body := env.sendWA(t, templateTo(testCustomer)); status != 200 {
				t.Fatalf("send %d: status %d: %s", i, status, body)
			}
		}
		status, body := env.sendWA(t, templateTo(testCustomer))
		if status != http.StatusBadRequest {
			t.Fatalf("3rd send: status %d, want 400: %s", status, body)
		}
		if e := decodeError(t, body); e.Error.Code != 131056 {
			t.Errorf("code %d", e.Error.Code)
		}
		assertSameShape(t, body, "wa-error-131056.json")
		if status, _ := env.sendWA(t, templateTo("77071234567")); status != 200 {
			t.Errorf("another recipient must not be limited, got %d", status)
		}
		env.clock.Advance(6 * time.Second)
		if status, _ := env.sendWA(t, templateTo(testCustomer)); status != 200 {
			t.Errorf("after 6s: status %d", status)
		}
		if status, _ := env.sendWA(t, templateTo(testCustomer)); status != 400 {
			t.Errorf("one token per interval: second send after 6s got %d", status)
		}
	})
	t.Run("default burst", func(t *testing.T) {
		env := newSim(t, Options{})
		for i := range DefaultPairBurst {
			if status, body := env.sendWA(t, templateTo(testCustomer)); status != 200 {
				t.Fatalf("send %d: %d %s", i, status, body)
			}
		}
		if status, _ := env.sendWA(t, templateTo(testCustomer)); status != 400 {
			t.Errorf("send beyond default burst: status %d, want 400", status)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		env := newSim(t, Options{PairLimit: PairLimit{Disabled: true}})
		for i := range 20 {
			if status, body := env.sendWA(t, templateTo(testCustomer)); status != 200 {
				t.Fatalf("send %d: %d %s", i, status, body)
			}
		}
	})
}

func TestCustomerServiceWindow(t *testing.T) {
	tests := []struct {
		name       string
		inboundAgo time.Duration // 0: customer never wrote
		sync       bool
		template   bool
		wantStatus int
		wantFailed bool // a failed/131047 status webhook follows
	}{
		{"never wrote", 0, false, false, 200, true},
		{"wrote 23h ago", 23 * time.Hour, false, false, 200, false},
		{"wrote 25h ago", 25 * time.Hour, false, false, 200, true},
		{"wrote 25h ago, synchronous error", 25 * time.Hour, true, false, 400, false},
		{"never wrote, synchronous error", 0, true, false, 400, false},
		{"template outside window", 25 * time.Hour, true, true, 200, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newSim(t, Options{})
			if tc.inboundAgo > 0 {
				if _, err := env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi"); err != nil {
					t.Fatal(err)
				}
				env.clock.Advance(tc.inboundAgo)
			}
			env.sim.SetSynchronous131047(tc.sync)
			env.sim.Wait()
			env.gw.reset()
			req := textTo(testCustomer, "Ваш заказ в пути")
			if tc.template {
				req = templateTo(testCustomer)
			}
			status, body := env.sendWA(t, req)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			if status == 400 {
				if e := decodeError(t, body); e.Error.Code != 131047 {
					t.Errorf("code %d, want 131047", e.Error.Code)
				}
				assertSameShape(t, body, "wa-error-131047.json")
			}
			env.sim.Wait()
			got := env.gw.received()
			if !tc.wantFailed {
				if len(got) != 0 {
					t.Errorf("unexpected deliveries: %q", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d deliveries, want 1 failed status", len(got))
			}
			assertSameShape(t, got[0], "wa-status-failed.json")
			h := decodeWAHook(t, got[0])
			st := h.Entry[0].Changes[0].Value.Statuses[0]
			var resp waSendResponse
			json.Unmarshal(body, &resp)
			if st.Status != "failed" || st.ID != resp.Messages[0].ID || st.RecipientID != testCustomer || st.Errors[0].Code != 131047 {
				t.Errorf("failed status = %+v", st)
			}
		})
	}
}

func TestStatusWebhookSequence(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		req     map[string]any
		want    []string
		batched bool
	}{
		{"in order", Options{}, nil, []string{"sent", "delivered", "read"}, false},
		{"out of order", Options{OutOfOrderStatuses: true}, nil, []string{"delivered", "sent", "read"}, false},
		{"duplicated", Options{DuplicateStatuses: true}, nil, []string{"sent", "sent", "delivered", "delivered", "read", "read"}, false},
		{"read without delivered", Options{ReadWithoutDelivered: true}, nil, []string{"sent", "read"}, false},
		{"batched", Options{BatchStatuses: true}, nil, []string{"sent", "delivered", "read"}, true},
		{"reaction only sent", Options{}, map[string]any{
			"messaging_product": "whatsapp", "to": testCustomer, "type": "reaction",
			"reaction": map[string]any{"message_id": "wamid.x", "emoji": "👍"},
		}, []string{"sent"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.AutoStatuses = true
			tc.opts.StatusDelay = time.Millisecond
			env := newSim(t, tc.opts)
			if _, err := env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi"); err != nil {
				t.Fatal(err)
			}
			env.gw.reset()
			req := tc.req
			if req == nil {
				req = textTo(testCustomer, "ok")
			}
			status, body := env.sendWA(t, req)
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			var resp waSendResponse
			json.Unmarshal(body, &resp)
			wamid := resp.Messages[0].ID
			env.sim.Wait()
			got := env.gw.received()
			if seq := statusSeq(t, got); !slices.Equal(seq, tc.want) {
				t.Fatalf("statuses %v, want %v", seq, tc.want)
			}
			if tc.batched != (len(got) == 1) && len(tc.want) > 1 {
				t.Errorf("batched=%v but got %d deliveries", tc.batched, len(got))
			}
			for _, b := range got {
				h := decodeWAHook(t, b)
				if h.Entry[0].ID != testWABA {
					t.Errorf("entry.id %q", h.Entry[0].ID)
				}
				v := h.Entry[0].Changes[0].Value
				if v.Metadata.PhoneNumberID != testPhoneID || v.Metadata.DisplayPhoneNumber != "77012345678" {
					t.Errorf("metadata %+v", v.Metadata)
				}
				for _, st := range v.Statuses {
					if st.ID != wamid || st.RecipientID != testCustomer {
						t.Errorf("status %+v, want id %s recipient %s", st, wamid, testCustomer)
					}
				}
				if !tc.batched {
					switch st := v.Statuses[0].Status; st {
					case "sent", "delivered", "read":
						assertSameShape(t, b, "wa-status-"+st+".json")
					}
				}
			}
			if errs := env.sim.WebhookErrors(); len(errs) != 0 {
				t.Errorf("webhook errors: %+v", errs)
			}
		})
	}
}

func TestStatusEchoesBizOpaqueCallbackData(t *testing.T) {
	env := newSim(t, Options{AutoStatuses: true})
	env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi")
	env.gw.reset()
	req := textTo(testCustomer, "ok")
	req["biz_opaque_callback_data"] = "ticket-42"
	if status, body := env.sendWA(t, req); status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	env.sim.Wait()
	for _, b := range env.gw.received() {
		if st := decodeWAHook(t, b).Entry[0].Changes[0].Value.Statuses[0]; st.BizOpaque != "ticket-42" {
			t.Errorf("%s status lacks biz_opaque_callback_data", st.Status)
		}
	}
}

func TestRequestsRecordedAndReset(t *testing.T) {
	env := newSim(t, Options{})
	env.sendWA(t, templateTo(testCustomer))
	reqs := env.sim.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v25.0/"+testPhoneID+"/messages" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testWAToken {
		t.Errorf("Authorization %q", got)
	}
	if !strings.Contains(string(r.Body), `"order_update"`) || !r.Time.Equal(env.clock.Now()) {
		t.Errorf("body %s time %v", r.Body, r.Time)
	}
	env.sim.Reset()
	if n := len(env.sim.Requests()); n != 0 {
		t.Errorf("after Reset: %d requests", n)
	}
}

func TestMaxRecorded(t *testing.T) {
	env := newSim(t, Options{MaxRecorded: 3, PairLimit: PairLimit{Disabled: true}})
	for range 5 {
		env.sendWA(t, templateTo(testCustomer))
	}
	if n := len(env.sim.Requests()); n != 3 {
		t.Errorf("%d requests kept, want 3", n)
	}
}

// TestConcurrentUse is meant for -race: sends, inbound, reads and resets
// all at once.
func TestConcurrentUse(t *testing.T) {
	env := newSim(t, Options{AutoStatuses: true, PairLimit: PairLimit{Disabled: true}, ThroughputPerSecond: -1})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(3)
		go func() {
			defer wg.Done()
			env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi")
		}()
		go func() {
			defer wg.Done()
			if status, body := env.sendWA(t, templateTo(testCustomer)); status != 200 {
				t.Errorf("send %d: %d %s", i, status, body)
			}
		}()
		go func() {
			defer wg.Done()
			_ = env.sim.Requests()
			_ = env.sim.WebhookErrors()
			if i%5 == 0 {
				env.sim.Reset()
			}
		}()
	}
	wg.Wait()
	env.sim.Wait()
}

func TestCloseStopsPendingStatuses(t *testing.T) {
	env := newSim(t, Options{AutoStatuses: true, StatusDelay: time.Hour})
	env.sendWA(t, templateTo(testCustomer))
	done := make(chan struct{})
	go func() {
		env.sim.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop a pending status")
	}
	if n := len(env.gw.received()); n != 0 {
		t.Errorf("%d deliveries after Close", n)
	}
}

// BackdateWhatsAppInbound closes a window the customer opened as a day's
// wait would: a free-form send is then refused with 131047, a template
// still goes.
func TestBackdateWhatsAppInboundClosesTheWindow(t *testing.T) {
	env := newSim(t, Options{})
	env.sim.SetSynchronous131047(true)
	if _, err := env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi"); err != nil {
		t.Fatal(err)
	}
	env.sim.Wait()
	if status, body := env.sendWA(t, textTo(testCustomer, "inside")); status != 200 {
		t.Fatalf("inside the window: %d %s", status, body)
	}
	env.sim.BackdateWhatsAppInbound(testPhoneID, testCustomer, env.clock.Now().Add(-25*time.Hour))
	status, body := env.sendWA(t, textTo(testCustomer, "outside"))
	if status != 400 || decodeError(t, body).Error.Code != 131047 {
		t.Fatalf("after backdating: %d %s, want 400 / 131047", status, body)
	}
	if status, body := env.sendWA(t, templateTo(testCustomer)); status != 200 {
		t.Fatalf("a template after backdating: %d %s", status, body)
	}
}
