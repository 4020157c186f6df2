package b24sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestEventBinding(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	h := "https://connector.example.com/b24/events"
	env.ok(t, "event.bind", map[string]any{"event": "OnImConnectorMessageAdd", "handler": h})
	r := env.rest(t, env.access, "event.bind", map[string]any{"EVENT": "ONIMCONNECTORMESSAGEADD", "HANDLER": h})
	if r.status != http.StatusBadRequest || r.errCode() != "ERROR_HANDLER_ALREADY_EXIST" {
		t.Errorf("rebind: %d %s", r.status, r.raw)
	}
	if r := env.rest(t, env.access, "event.bind", map[string]any{"event": "OnSomethingMadeUp", "handler": h}); r.errCode() != "ERROR_EVENT_NOT_FOUND" {
		t.Errorf("unknown event: %d %s", r.status, r.raw)
	}
	if r := env.rest(t, env.access, "event.bind", map[string]any{"event": "OnAppUninstall"}); r.errCode() != "ERROR_ARGUMENT" {
		t.Errorf("no handler: %d %s", r.status, r.raw)
	}
	env.ok(t, "event.bind", map[string]any{"event": "OnAppUninstall", "handler": h})
	r = env.ok(t, "event.get", nil)
	if dig(r.body, "result", 0, "event") != "ONIMCONNECTORMESSAGEADD" || dig(r.body, "result", 0, "handler") != h ||
		dig(r.body, "result", 0, "auth_type") != "0" || dig(r.body, "result", 1, "event") != "ONAPPUNINSTALL" {
		t.Errorf("event.get: %s", r.raw)
	}
	r = env.ok(t, "event.unbind", map[string]any{"event": "OnAppUninstall", "handler": h})
	if dig(r.body, "result", "count") != float64(1) || len(env.portal.Events()) != 1 {
		t.Errorf("unbind: %s", r.raw)
	}

	// Placements.
	env.ok(t, "placement.bind", map[string]any{"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": "https://connector.example.com/tab", "TITLE": "WhatsApp"})
	if r := env.rest(t, env.access, "placement.bind", map[string]any{"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": "https://connector.example.com/tab"}); r.status != 400 {
		t.Errorf("placement rebind: %d %s", r.status, r.raw)
	}
	if r := env.rest(t, env.access, "placement.bind", map[string]any{"PLACEMENT": "SETTING_CONNECTOR", "HANDLER": "https://connector.example.com/s"}); r.errCode() != "ERROR_PLACEMENT_NOT_FOUND" {
		t.Errorf("SETTING_CONNECTOR: %d %s", r.status, r.raw)
	}
	r = env.ok(t, "placement.get", nil)
	if dig(r.body, "result", 0, "placement") != "CRM_DEAL_DETAIL_TAB" || dig(r.body, "result", 0, "langAll", "ru", "TITLE") != "WhatsApp" {
		t.Errorf("placement.get: %s", r.raw)
	}
	env.ok(t, "placement.unbind", map[string]any{"PLACEMENT": "CRM_DEAL_DETAIL_TAB"})
	if len(env.portal.Placements()) != 0 {
		t.Errorf("placement not unbound")
	}
}

// setupDialog binds the handler, sets up the connector and has the fixture
// customer write once.
func setupDialog(t *testing.T, env *simEnv, handler string) {
	t.Helper()
	env.ok(t, "event.bind", map[string]any{"event": "OnImConnectorMessageAdd", "handler": handler})
	env.setupConnector(t)
	if r := env.restRaw(t, "imconnector.send.messages", fixture(t, "imconnector-send-messages-request.json")); r.status != 200 {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
}

func TestOperatorReply(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	h := newHandlerStub(t)
	setupDialog(t, env, h.URL)

	pdf := []byte("%PDF-1.4 invoice")
	msgID, err := env.sim.OperatorReply(context.Background(), testMemberID, "3", "79161234567", "Добрый день! Счёт во вложении.",
		File{Name: "invoice-1024.pdf", Mime: "application/pdf", Content: pdf})
	if err != nil {
		t.Fatal(err)
	}
	bodies := h.received()
	if len(bodies) != 1 {
		t.Fatalf("handler got %d posts", len(bodies))
	}
	// Exactly the fixture's key set, brackets percent-encoded.
	wantKeys := formKeys(t, string(fixture(t, "imconnector-message-add-event.txt")))
	if got := formKeys(t, bodies[0]); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("keys differ:\ngot  %v\nwant %v", got, wantKeys)
	}
	// Same key order as the fixture too.
	order := func(body string) []string {
		var ks []string
		for _, kv := range strings.Split(strings.TrimSpace(body), "&") {
			k, _, _ := strings.Cut(kv, "=")
			ks = append(ks, k)
		}
		return ks
	}
	if got, want := order(bodies[0]), order(string(fixture(t, "imconnector-message-add-event.txt"))); !slices.Equal(got, want) {
		t.Errorf("key order differs:\ngot  %v\nwant %v", got, want)
	}

	f, _ := url.ParseQuery(bodies[0])
	msgs := env.sim.Line(testMemberID, 3).Messages()
	in := msgs[0]
	checks := map[string]string{
		"event":                                      "ONIMCONNECTORMESSAGEADD",
		"data[CONNECTOR]":                            testConnector,
		"data[LINE]":                                 "3",
		"data[MESSAGES][0][im][chat_id]":             in.IMChatID,
		"data[MESSAGES][0][im][message_id]":          msgID,
		"data[MESSAGES][0][message][user_id]":        "27",
		"data[MESSAGES][0][message][text]":           "[b]Olga Ivanova:[/b][br]Добрый день! Счёт во вложении.",
		"data[MESSAGES][0][message][files][0][name]": "invoice-1024.pdf",
		"data[MESSAGES][0][message][files][0][type]": "file",
		"data[MESSAGES][0][message][files][0][size]": "16",
		"data[MESSAGES][0][chat][id]":                "79161234567",
		"auth[application_token]":                    testAppToken,
		"auth[member_id]":                            testMemberID,
		"auth[domain]":                               testDomain,
		"auth[user_id]":                              "27",
		"auth[client_endpoint]":                      env.srv.URL + "/rest/",
	}
	for k, want := range checks {
		if got := f.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// The event's user token works for REST, the file link serves the file.
	if r := env.rest(t, f.Get("auth[access_token]"), "user.current", nil); dig(r.body, "result", "ID") != "27" {
		t.Errorf("event token: %d %s", r.status, r.raw)
	}
	resp, err := http.Get(f.Get("data[MESSAGES][0][message][files][0][downloadLink]"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != string(pdf) || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("download: %q %s", got, resp.Header.Get("Content-Type"))
	}
	if resp, err := http.Get(f.Get("data[MESSAGES][0][message][files][0][link]")); err != nil || resp.StatusCode != 200 {
		t.Errorf("link: %v %v", err, resp)
	}

	out := env.sim.Line(testMemberID, 3).Messages()[1]
	if out.Direction != Outbound || out.IMMessageID != msgID || out.OperatorID != 27 || out.Delivered {
		t.Errorf("outbound transcript: %+v", out)
	}
	if d := env.sim.Deliveries(); len(d) != 1 || !d[0].OK() || d[0].Event != "ONIMCONNECTORMESSAGEADD" || d[0].Body != bodies[0] {
		t.Errorf("Deliveries() = %+v", d)
	}

	// Delivery confirmation like the fixture, with the ids from the event.
	req := strings.NewReplacer(`"chat_id": 1807`, `"chat_id": `+in.IMChatID, `"message_id": 86497`, `"message_id": `+msgID).
		Replace(string(fixture(t, "imconnector-send-status-delivery-request.json")))
	r := env.restRaw(t, "imconnector.send.status.delivery", []byte(req))
	assertSameJSONValue(t, r.body["result"], mustJSON(t, fixture(t, "imconnector-send-status-delivery-response.json")).(map[string]any)["result"])
	line := env.sim.Line(testMemberID, 3)
	if dl := line.Deliveries(); len(dl) != 1 || dl[0].IMMessageID != msgID || dl[0].ExternalIDs[0] != "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA" {
		t.Errorf("Deliveries: %+v", dl)
	}
	if !line.Messages()[1].Delivered {
		t.Errorf("operator message not marked delivered")
	}
	env.ok(t, "imconnector.send.status.reading", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "MESSAGES": []any{
		map[string]any{"im": map[string]any{"chat_id": in.IMChatID, "message_id": msgID}, "message": map[string]any{"id": []string{"wamid.X"}}, "chat": map[string]any{"id": "79161234567"}},
	}})
	if len(line.Reads()) != 1 || !line.Messages()[1].Read {
		t.Errorf("reading not recorded")
	}

	// A failing handler is not retried; the status is recorded and returned.
	h.setStatus(http.StatusInternalServerError)
	if _, err := env.sim.OperatorReply(context.Background(), testMemberID, "3", "79161234567", "again"); err == nil {
		t.Errorf("handler 500 not reported")
	}
	if n := len(h.received()); n != 2 {
		t.Errorf("handler got %d posts, want 2 (no retry)", n)
	}
	if d := env.sim.Deliveries(); d[len(d)-1].Status != 500 || d[len(d)-1].OK() {
		t.Errorf("last delivery %+v", d[len(d)-1])
	}
	// Unknown chat, and no handler bound.
	if _, err := env.sim.OperatorReply(context.Background(), testMemberID, "3", "nobody", "x"); err == nil {
		t.Errorf("unknown chat accepted")
	}
	env.ok(t, "event.unbind", map[string]any{"event": "OnImConnectorMessageAdd", "handler": h.URL})
	if id, err := env.sim.OperatorReply(context.Background(), testMemberID, "3", "79161234567", "x"); !errors.Is(err, ErrNoHandler) || id == "" {
		t.Errorf("no handler: %q %v", id, err)
	}
}

func assertSameJSONValue(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestPostEventShapes(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	h := newHandlerStub(t)
	for _, ev := range []string{"OnImConnectorLineDelete", "OnImConnectorStatusDelete", "OnAppUninstall", "OnImConnectorMessageUpdate"} {
		env.ok(t, "event.bind", map[string]any{"event": ev, "handler": h.URL})
	}
	ctx := context.Background()
	cases := []struct {
		event, fixture string
		form           url.Values
	}{
		{"ONIMCONNECTORLINEDELETE", "imconnector-line-delete-event.txt", url.Values{"data": {"3"}}},
		{"ONIMCONNECTORSTATUSDELETE", "imconnector-status-delete-event.txt", url.Values{"data[connector]": {testConnector}, "data[line]": {"3"}}},
		{"ONAPPUNINSTALL", "uninstall-event.txt", url.Values{"data[LANGUAGE_ID]": {"ru"}, "data[CLEAN]": {"1"}}},
		{"ONIMCONNECTORMESSAGEUPDATE", "imconnector-message-update-event.txt", url.Values{
			"data[CONNECTOR]": {testConnector}, "data[LINE]": {"3"},
			"data[MESSAGES][0][im][chat_id]": {"1807"}, "data[MESSAGES][0][im][message_id]": {"86497"},
			"data[MESSAGES][0][message][id][0]": {"wamid.x"}, "data[MESSAGES][0][message][text]": {"t"},
			"data[MESSAGES][0][chat][id]": {"79161234567"},
		}},
	}
	for i, c := range cases {
		if err := env.sim.PostEvent(ctx, testMemberID, c.event, c.form); err != nil {
			t.Fatalf("%s: %v", c.event, err)
		}
		body := h.received()[i]
		if got, want := formKeys(t, body), formKeys(t, string(fixture(t, c.fixture))); !reflect.DeepEqual(got, want) {
			t.Errorf("%s keys:\ngot  %v\nwant %v", c.event, got, want)
		}
		if strings.Contains(body, "access_token") || !strings.Contains(body, "auth%5Bapplication_token%5D="+testAppToken) {
			t.Errorf("%s auth block: %s", c.event, body)
		}
	}
	if err := env.sim.PostEvent(ctx, testMemberID, "ONIMCONNECTORDIALOGFINISH", nil); !errors.Is(err, ErrNoHandler) {
		t.Errorf("unbound event: %v", err)
	}
}

func TestInstallEvent(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	form := env.sim.InstallEventForm(testMemberID, "en")
	var keys []string
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := formKeys(t, string(fixture(t, "install-event.txt"))); !reflect.DeepEqual(keys, want) {
		t.Errorf("keys:\ngot  %v\nwant %v", keys, want)
	}
	if form.Get("data[LANGUAGE_ID]") != "en" || form.Get("auth[application_token]") != testAppToken || form.Get("auth[user_id]") != "1" {
		t.Errorf("values: %v", form)
	}
	// Its tokens are real: the refresh token rotates once.
	if r := env.token(t, http.MethodGet, refreshQuery(form.Get("auth[refresh_token]"))); r.status != 200 {
		t.Errorf("install refresh token: %d %s", r.status, r.raw)
	}
	if r := env.rest(t, form.Get("auth[access_token]"), "app.info", nil); r.status != 200 {
		t.Errorf("install access token: %d", r.status)
	}

	h := newHandlerStub(t)
	status, err := env.sim.PostInstallEvent(context.Background(), testMemberID, h.URL, "")
	if err != nil || status != 200 {
		t.Fatalf("PostInstallEvent: %d %v", status, err)
	}
	body := h.received()[0]
	if !strings.HasPrefix(body, "event=ONAPPINSTALL&event_handler_id=0&data%5BVERSION%5D=1") {
		t.Errorf("install body: %s", body)
	}
	if got, want := formKeys(t, body), formKeys(t, string(fixture(t, "install-event.txt"))); !reflect.DeepEqual(got, want) {
		t.Errorf("posted keys differ: %v", got)
	}
}

func TestBackgroundEvents(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	h := newHandlerStub(t)
	env.ok(t, "event.bind", map[string]any{"event": "OnCrmContactAdd", "handler": h.URL})
	env.ok(t, "event.bind", map[string]any{"event": "OnImConnectorDialogStart", "handler": h.URL})
	env.ok(t, "event.bind", map[string]any{"event": "OnImConnectorDialogFinish", "handler": h.URL})
	r := env.ok(t, "crm.contact.add", map[string]any{"fields": map[string]any{"NAME": "Anna"}})
	env.setupConnector(t)
	env.restRaw(t, "imconnector.send.messages", fixture(t, "imconnector-send-messages-request.json"))
	env.sim.Wait()

	bodies := h.received()
	if len(bodies) != 2 {
		t.Fatalf("got %d events", len(bodies))
	}
	forms := map[string]url.Values{}
	for _, b := range bodies {
		f, _ := url.ParseQuery(b)
		forms[f.Get("event")] = f
	}
	if f := forms["ONCRMCONTACTADD"]; f.Get("data[FIELDS][ID]") != fmt.Sprint(dig(r.body, "result")) || f.Get("auth[access_token]") == "" {
		t.Errorf("contact add event: %v", f)
	}
	start := forms["ONIMCONNECTORDIALOGSTART"]
	d := env.sim.Line(testMemberID, 3).Dialogs()[0]
	if start.Get("data[DATA][0][session][id]") != d.SessionID || start.Get("data[DATA][0][chat][id]") != d.IMChatID || start.Get("data[DATA][0][connector][user_id]") != "79161234567" {
		t.Errorf("dialog start: %v", start)
	}

	if err := env.sim.CloseSession(context.Background(), testMemberID, 3, "79161234567"); err != nil {
		t.Fatal(err)
	}
	finish, _ := url.ParseQuery(h.received()[2])
	if finish.Get("event") != "ONIMCONNECTORDIALOGFINISH" || finish.Get("data[DATA][0][session][closed]") != "Y" {
		t.Errorf("dialog finish: %v", finish)
	}
	// The next message opens a new session in the same chat.
	r = env.restRaw(t, "imconnector.send.messages", fixture(t, "imconnector-send-messages-request.json"))
	if dig(r.body, "result", "DATA", "RESULT", 0, "session", "ID") == d.SessionID || dig(r.body, "result", "DATA", "RESULT", 0, "session", "CHAT_ID") != d.IMChatID {
		t.Errorf("after close: %s", r.raw)
	}
	env.sim.Wait()
}
