package b24sim

import (
	"net/http"
	"testing"
)

func TestConnectorLifecycle(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})

	// Validation failures are HTTP 200 with result.result=false.
	r := env.ok(t, "imconnector.register", map[string]any{"ID": "acme.whatsapp", "NAME": "x"})
	if dig(r.body, "result", "result") != false || dig(r.body, "result", "error") != "APPLICATION_REGISTRATION_ERROR_POINT" {
		t.Errorf("dot in id: %s", r.raw)
	}
	r = env.ok(t, "imconnector.register", map[string]any{"ID": "acme_whatsapp", "NAME": "x"})
	if dig(r.body, "result", "error") != "ICON_REQUIRED" {
		t.Errorf("no icon: %s", r.raw)
	}

	r = env.restRaw(t, "imconnector.register", fixture(t, "imconnector-register-request.json"))
	assertSameShape(t, r.raw, "imconnector-register-response.json")
	if dig(r.body, "result", "result") != true {
		t.Fatalf("register: %s", r.raw)
	}
	if c := env.portal.Connectors(); len(c) != 1 || c[0].ID != testConnector || c[0].ChatGroup || !c[0].NeedSignature {
		t.Errorf("Connectors() = %+v", c)
	}

	status := func() map[string]any {
		r := env.ok(t, "imconnector.status", map[string]any{"CONNECTOR": testConnector, "LINE": 3})
		return r.body["result"].(map[string]any)
	}
	if st := status(); st["STATUS"] != false || st["CONFIGURED"] != false {
		t.Errorf("status before activation: %v", st)
	}
	env.ok(t, "imconnector.activate", map[string]any{"CONNECTOR": testConnector, "LINE": "3", "ACTIVE": "1"})
	if st := status(); st["STATUS"] != false {
		t.Errorf("status before data.set: %v", st)
	}
	env.ok(t, "imconnector.connector.data.set", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "DATA": map[string]any{"ID": "109283746501928", "URL_IM": "https://wa.me/77012345678", "NAME": "Acme"}})
	r = env.ok(t, "imconnector.status", map[string]any{"CONNECTOR": testConnector, "LINE": 3})
	assertSameShape(t, r.raw, "imconnector-status-response.json")
	if dig(r.body, "result", "STATUS") != true || dig(r.body, "result", "LINE") != float64(3) || dig(r.body, "result", "CONNECTOR") != testConnector {
		t.Errorf("status: %s", r.raw)
	}
	if st := env.portal.ConnectorStatus(testConnector, 3); !st.Status || st.Data["ID"] != "109283746501928" {
		t.Errorf("ConnectorStatus = %+v", st)
	}
	r = env.ok(t, "imconnector.list", nil)
	if dig(r.body, "result", testConnector) != "Acme WhatsApp" || dig(r.body, "result", "livechat") == nil {
		t.Errorf("list: %s", r.raw)
	}

	// Deactivation: STATUS false again, sending fails.
	env.ok(t, "imconnector.activate", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "ACTIVE": 0})
	if st := status(); st["STATUS"] != false {
		t.Errorf("status after deactivation: %v", st)
	}
	r = env.restRaw(t, "imconnector.send.messages", fixture(t, "imconnector-send-messages-request.json"))
	if r.status != http.StatusBadRequest {
		t.Errorf("send on deactivated connector: %d", r.status)
	}

	r = env.ok(t, "imconnector.unregister", map[string]any{"ID": testConnector})
	if dig(r.body, "result", "result") != true || len(env.portal.Connectors()) != 0 {
		t.Errorf("unregister: %s", r.raw)
	}
}

func TestSendMessagesNotActiveLine(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	req := fixture(t, "imconnector-send-messages-request.json")

	// Registered but never activated on line 3.
	env.restRaw(t, "imconnector.register", fixture(t, "imconnector-register-request.json"))
	r := env.restRaw(t, "imconnector.send.messages", req)
	if r.status != http.StatusBadRequest {
		t.Errorf("not activated: HTTP %d", r.status)
	}
	assertSameJSON(t, r.raw, "error-not-active-line.json")

	// Activated, but the Open Line itself is switched off.
	env.setupConnector(t)
	if err := env.sim.SetLineActive(testMemberID, 3, false); err != nil {
		t.Fatal(err)
	}
	r = env.restRaw(t, "imconnector.send.messages", req)
	if r.status != http.StatusBadRequest || r.errCode() != "NOT_ACTIVE_LINE" {
		t.Errorf("inactive line: %d %s", r.status, r.raw)
	}
	// Unknown line.
	env.sim.SetLineActive(testMemberID, 3, true)
	r = env.rest(t, env.access, "imconnector.send.messages", map[string]any{"CONNECTOR": testConnector, "LINE": 42, "MESSAGES": []any{}})
	if r.errCode() != "NOT_ACTIVE_LINE" {
		t.Errorf("unknown line: %d %s", r.status, r.raw)
	}
	if got := len(env.sim.Line(testMemberID, 3).Messages()); got != 0 {
		t.Errorf("%d messages recorded from failed sends", got)
	}
}

func TestSendMessages(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	env.setupConnector(t)

	r := env.restRaw(t, "imconnector.send.messages", fixture(t, "imconnector-send-messages-request.json"))
	if r.status != 200 {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	assertSameShape(t, r.raw, "imconnector-send-messages-response.json")
	item := dig(r.body, "result", "DATA", "RESULT", 0)
	chatID, sessionID := dig(item, "session", "CHAT_ID"), dig(item, "session", "ID")
	if dig(item, "message", "id") != "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUI1RjQ4QkY1QjA2MkRDNkY2NwA=" ||
		dig(item, "chat", "description") != "https://wa.me/79161234567" || chatID == "" || sessionID == "" {
		t.Errorf("result item: %s", r.raw)
	}

	// A second message of the same customer stays in the same chat and
	// session; another customer gets new ones. One item is invalid.
	r = env.ok(t, "imconnector.send.messages", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "MESSAGES": []any{
		map[string]any{"user": map[string]any{"id": "79161234567"}, "message": map[string]any{"id": "m2", "text": "ещё"}, "chat": map[string]any{"id": "79161234567"}},
		map[string]any{"user": map[string]any{"id": "79990000001", "name": "Boris"}, "message": map[string]any{"id": "m3", "text": "hi"}, "chat": map[string]any{"id": "79990000001"}},
		map[string]any{"user": map[string]any{"id": "x"}, "message": map[string]any{"id": "m4"}, "chat": map[string]any{"id": "x"}},
	}})
	items := dig(r.body, "result", "DATA", "RESULT").([]any)
	if dig(items[0], "session", "CHAT_ID") != chatID || dig(items[0], "session", "ID") != sessionID {
		t.Errorf("same customer moved: %v", items[0])
	}
	if dig(items[1], "session", "CHAT_ID") == chatID {
		t.Errorf("second customer shares the chat")
	}
	if dig(items[2], "SUCCESS") != false || dig(items[2], "ERRORS", 0) == nil {
		t.Errorf("invalid item: %v", items[2])
	}

	msgs := env.sim.Line(testMemberID, 3).Messages()
	if len(msgs) != 3 {
		t.Fatalf("transcript has %d messages", len(msgs))
	}
	m := msgs[0]
	if m.Direction != Inbound || m.User.Name != "Anna" || m.User.LastName != "Smirnova" || m.User.Phone != "+79161234567" ||
		m.User.PictureURL != "https://cdn.example.com/avatars/79161234567.jpg" || m.Date != 1767094321 ||
		len(m.Files) != 1 || m.Files[0].URL != "https://connector.example.com/media/7f3a9c1e/photo.jpg" ||
		m.IMChatID != chatID || m.SessionID != sessionID || m.IMMessageID == "" || m.ChatName != "Anna Smirnova" {
		t.Errorf("transcript entry: %+v", m)
	}

	// Update and delete find the message by external id.
	r = env.ok(t, "imconnector.update.messages", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "MESSAGES": []any{
		map[string]any{"user": map[string]any{"id": "79161234567"}, "message": map[string]any{"id": "m2", "text": "edited"}, "chat": map[string]any{"id": "79161234567"}},
	}})
	if dig(r.body, "result", "DATA", "RESULT", 0, "SUCCESS") != true || dig(r.body, "result", "DATA", "RESULT", 0, "session") != nil {
		t.Errorf("update: %s", r.raw)
	}
	env.ok(t, "imconnector.delete.messages", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "MESSAGES": []any{
		map[string]any{"user": map[string]any{"id": "79990000001"}, "message": map[string]any{"id": "m3"}, "chat": map[string]any{"id": "79990000001"}},
	}})
	msgs = env.sim.Line(testMemberID, 3).Messages()
	if msgs[1].Text != "edited" || msgs[1].Edits != 1 || !msgs[2].Deleted {
		t.Errorf("after edit/delete: %+v / %+v", msgs[1], msgs[2])
	}

	env.ok(t, "imconnector.chat.name.set", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "CHAT_ID": "79990000001", "USER_ID": "79990000001", "NAME": "Boris B."})
	for _, d := range env.sim.Line(testMemberID, 3).Dialogs() {
		if d.UserID == "79990000001" && d.ChatName != "Boris B." {
			t.Errorf("chat name: %+v", d)
		}
	}
}
