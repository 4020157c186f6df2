package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

// B's own business in the simulator: another number, WABA and token.
const (
	phoneB = "200000000000011"
	wabaB  = "200000000000012"
	tokenB = "EAAG-b-own-token"
)

func workspaceWithToken(t *testing.T, e *apptest.Env, name string) (id, token string) {
	t.Helper()
	st, w := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": name})
	if st != http.StatusCreated {
		t.Fatalf("workspace: %d %v", st, w)
	}
	st, tk := e.Do("POST", "/api/v1/workspaces/"+w["id"].(string)+"/tokens", nil)
	if st != http.StatusCreated {
		t.Fatalf("token: %d %v", st, tk)
	}
	return w["id"].(string), tk["token"].(string)
}

func waClaim(number, waba, token string) map[string]any {
	return map[string]any{"type": "whatsapp", "name": "Чужой", "phone_number_id": number, "waba_id": waba, "access_token": token}
}

// S1: a workspace cannot take over another's number, active or disabled,
// and cannot tell from the answer that the number is connected here.
func TestNumberTakeover(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		e.Sim.AddWhatsAppNumber(phoneB, wabaB, "+7 916 000 00 11", tokenB)
		_, tokA := workspaceWithToken(t, e, "A")
		wsB, tokB := workspaceWithToken(t, e, "B")
		chA := e.CreateWhatsApp(tokA)

		// What B gets for a number nobody here has, with a token Meta
		// does not accept for it: the reference refusal.
		stRef, ref := e.Do("POST", "/api/v1/channels", waClaim("300000000000099", wabaB, tokenB), tokB)
		if stRef != http.StatusUnprocessableEntity || errCode(ref) != "account_not_verified" {
			t.Fatalf("unknown number: %d %v", stRef, ref)
		}
		sameAsRef := func(what string, st int, body map[string]any) {
			t.Helper()
			if st != stRef || !reflect.DeepEqual(body, ref) {
				t.Errorf("%s: %d %v; want exactly the refusal of an unknown number: %d %v", what, st, body, stRef, ref)
			}
		}
		// A's number with B's own token, with a made-up token, with B's
		// WABA; and with A's real token (B learnt it somehow): all the same.
		for _, c := range []struct {
			what string
			body map[string]any
		}{
			{"B's token for A's number", waClaim(apptest.PhoneNumberID, apptest.WabaID, tokenB)},
			{"a made-up token", waClaim(apptest.PhoneNumberID, apptest.WabaID, "EAAG-made-up")},
			{"A's number in B's WABA", waClaim(apptest.PhoneNumberID, wabaB, tokenB)},
			{"A's own token while A's channel is active", waClaim(apptest.PhoneNumberID, apptest.WabaID, apptest.WAToken)},
		} {
			st, body := e.Do("POST", "/api/v1/channels", c.body, tokB)
			sameAsRef(c.what, st, body)
		}

		// A disables its channel; the number is still A's.
		if st, body := e.Do("DELETE", "/api/v1/channels/"+chA, nil, tokA); st != http.StatusOK {
			t.Fatalf("disable: %d %v", st, body)
		}
		st, body := e.Do("POST", "/api/v1/channels", waClaim(apptest.PhoneNumberID, apptest.WabaID, apptest.WAToken), tokB)
		sameAsRef("A's number while disabled", st, body)
		if _, list := e.Do("GET", "/api/v1/channels", nil, tokB); len(list["data"].([]any)) != 0 {
			t.Fatalf("B got a channel: %v", list)
		}
		// The proof went to Meta each time: the refusal of a held number
		// is not quicker than Meta's.
		if n := countGraph(e, "GET", "/v25.0/"+apptest.PhoneNumberID); n < 5 {
			t.Errorf("%d number reads reached the simulator, want one per claim", n)
		}

		// A takes it back with its own token.
		if st, body := e.Do("PATCH", "/api/v1/channels/"+chA, map[string]any{"state": "active"}, tokA); st != http.StatusOK || body["state"] != "active" {
			t.Fatalf("A re-activates: %d %v", st, body)
		}
		if _, err := e.Sim.SendWhatsAppText(t.Context(), apptest.PhoneNumberID, customer, "Анна", "Привет"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("inbound in A's channel", func() bool { return len(e.Messages(chA)) == 1 })

		// A token change is a claim too: one Meta refuses changes nothing.
		st, body = e.Do("PATCH", "/api/v1/channels/"+chA, map[string]any{"access_token": "EAAG-made-up"}, tokA)
		if st != http.StatusUnprocessableEntity || errCode(body) != "account_not_verified" {
			t.Fatalf("bad token accepted on PATCH: %d %v", st, body)
		}
		st, body = e.Do("PATCH", "/api/v1/channels/"+chA, map[string]any{"waba_id": wabaB}, tokA)
		if st != http.StatusUnprocessableEntity || errCode(body) != "account_not_verified" {
			t.Fatalf("a WABA that does not hold the number accepted on PATCH: %d %v", st, body)
		}
		_, view := e.Do("GET", "/api/v1/channels/"+chA, nil, tokA)
		if view["waba_id"] != apptest.WabaID || view["state"] != "active" {
			t.Fatalf("refused PATCH changed the channel: %v", view)
		}
		if st, body := e.Do("PATCH", "/api/v1/channels/"+chA, map[string]any{"access_token": apptest.WAToken}, tokA); st != http.StatusOK {
			t.Fatalf("the real token refused on PATCH: %d %v", st, body)
		}

		// The operator may hand a disabled number to another workspace
		// (a business moving); then A cannot take it back, and is told
		// no more than B was.
		e.Do("DELETE", "/api/v1/channels/"+chA, nil, tokA)
		st, opCh := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "B", "workspace_id": wsB,
			"phone_number_id": apptest.PhoneNumberID, "waba_id": apptest.WabaID, "access_token": apptest.WAToken})
		if st != http.StatusCreated || opCh["workspace_id"] != wsB || opCh["display_phone"] != "+77012345678" {
			t.Fatalf("operator claim for B: %d %v", st, opCh)
		}
		st, body = e.Do("PATCH", "/api/v1/channels/"+chA, map[string]any{"state": "active"}, tokA)
		if st != http.StatusUnprocessableEntity || errCode(body) != "account_not_verified" {
			t.Fatalf("A re-activated a number B holds: %d %v", st, body)
		}

		// Instagram: an account is claimed only with its own token.
		st, body = e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "IG", "ig_user_id": apptest.IGUserID, "access_token": tokenB}, tokB)
		if st != http.StatusUnprocessableEntity || errCode(body) != "account_not_verified" {
			t.Fatalf("instagram with another token: %d %v", st, body)
		}
		if st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "IG", "ig_user_id": apptest.IGUserID, "access_token": apptest.IGToken}, tokB); st != http.StatusCreated {
			t.Fatalf("instagram with its token: %d %v", st, body)
		}
	})
}

func countGraph(e *apptest.Env, method, path string) int {
	n := 0
	for _, r := range e.Sim.Requests() {
		if r.Method == method && r.Path == path && !r.IsReadMark() {
			n++
		}
	}
	return n
}

// S1: a delivery whose entry.id (the WABA) is not the channel's WABA is
// kept aside and answered 200, never stored into the channel.
func TestWebhookFromAnotherWABA(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		delivery := func(waba, wamid string) []byte {
			return []byte(`{"object":"whatsapp_business_account","entry":[{"id":"` + waba + `","changes":[{"field":"messages","value":{` +
				`"messaging_product":"whatsapp","metadata":{"display_phone_number":"77012345678","phone_number_id":"` + apptest.PhoneNumberID + `"},` +
				`"contacts":[{"profile":{"name":"Мошенник"},"wa_id":"79990000000"}],` +
				`"messages":[{"from":"79990000000","id":"` + wamid + `","timestamp":"1767600000","type":"text","text":{"body":"чужое"}}]}}]}]}`)
		}
		st, body := e.PostWebhook(delivery("300000000000001", "wamid.FOREIGN"))
		if st != http.StatusOK || body["stored"] != float64(0) || body["unrouted"] != float64(1) {
			t.Fatalf("foreign WABA: %d %v", st, body)
		}
		var kept int64
		e.App.DB.Gorm.Model(&store.UnroutedEvent{}).Where("account_id = ?", apptest.PhoneNumberID).Count(&kept)
		if kept != 1 {
			t.Fatalf("foreign delivery not kept aside: %d rows", kept)
		}
		// The same delivery from the channel's WABA is stored.
		st, body = e.PostWebhook(delivery(apptest.WabaID, "wamid.OWN"))
		if st != http.StatusOK || body["stored"] != float64(1) {
			t.Fatalf("own WABA: %d %v", st, body)
		}
		ms := e.Messages(ch)
		if len(ms) != 1 || ms[0]["external_id"] != "wamid.OWN" {
			t.Fatalf("channel holds %v", ms)
		}
		var contacts int64
		e.App.DB.Gorm.Model(&store.Contact{}).Where("channel_id = ?", ch).Count(&contacts)
		if contacts != 1 {
			t.Fatalf("%d contacts; the foreign delivery made one", contacts)
		}

		// A channel from before the check, with no WABA, receives nothing
		// until its WABA is set (and proven).
		if err := e.App.DB.Gorm.Model(&store.Channel{}).Where("id = ?", ch).Update("waba_id", "").Error; err != nil {
			t.Fatal(err)
		}
		e.App.Store.ForgetChannels() // written behind the store's back
		if st, body := e.PostWebhook(delivery(apptest.WabaID, "wamid.LEGACY1")); st != http.StatusOK || body["stored"] != float64(0) {
			t.Fatalf("channel without a WABA stored a delivery: %d %v", st, body)
		}
		if st, body := e.Do("PATCH", "/api/v1/channels/"+ch, map[string]any{"access_token": apptest.WAToken}); st != http.StatusUnprocessableEntity || errCode(body) != "waba_id_required" {
			t.Fatalf("re-proof without a WABA: %d %v", st, body)
		}
		if st, body := e.Do("PATCH", "/api/v1/channels/"+ch, map[string]any{"waba_id": apptest.WabaID}); st != http.StatusOK || body["waba_id"] != apptest.WabaID {
			t.Fatalf("setting the WABA: %d %v", st, body)
		}
		if st, body := e.PostWebhook(delivery(apptest.WabaID, "wamid.LEGACY2")); st != http.StatusOK || body["stored"] != float64(1) {
			t.Fatalf("after the WABA was set: %d %v", st, body)
		}
	})
}

// rawDo sends body with a content type and returns the raw answer.
func rawDo(t *testing.T, e *apptest.Env, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apptest.AdminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

// S6 and item 10: bounded, printable fields; errors a person can act on.
func TestAPIFieldsAndErrors(t *testing.T) {
	e := apptest.Start(t, apptest.Options{NoStart: true})
	wa := e.CreateWhatsApp()
	_, def := e.Do("GET", "/api/v1/workspaces", nil)
	ws := def["data"].([]any)[0].(map[string]any)["id"].(string)
	good := func(over map[string]any) map[string]any {
		b := map[string]any{"type": "whatsapp", "name": "x", "phone_number_id": "100000000000001", "waba_id": apptest.WabaID, "access_token": apptest.WAToken}
		for k, v := range over {
			b[k] = v
		}
		return b
	}
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		code   int
		err    string
	}{
		{"long channel name", "POST", "/api/v1/channels", good(map[string]any{"name": strings.Repeat("я", 201)}), 422, "name_invalid"},
		{"newline in a name", "POST", "/api/v1/channels", good(map[string]any{"name": "Продажи\nАдмин"}), 422, "name_invalid"},
		{"bidi override in a name", "POST", "/api/v1/channels", good(map[string]any{"name": "Sales\u202egnp.exe"}), 422, "name_invalid"},
		{"long display phone", "POST", "/api/v1/channels", good(map[string]any{"display_phone": strings.Repeat("7", 500)}), 422, "display_phone_invalid"},
		{"letters in display phone", "POST", "/api/v1/channels", good(map[string]any{"display_phone": "call me"}), 422, "display_phone_invalid"},
		{"long token", "POST", "/api/v1/channels", good(map[string]any{"access_token": strings.Repeat("A", 5000)}), 422, "access_token_invalid"},
		{"token with a space", "POST", "/api/v1/channels", good(map[string]any{"access_token": "EAAG abc"}), 422, "access_token_invalid"},
		{"waba with letters", "POST", "/api/v1/channels", good(map[string]any{"waba_id": "waba"}), 422, "waba_id_invalid"},
		{"PATCH long name", "PATCH", "/api/v1/channels/" + wa, map[string]any{"name": strings.Repeat("n", 201)}, 422, "name_invalid"},
		{"PATCH control char", "PATCH", "/api/v1/channels/" + wa, map[string]any{"name": "a\u0007b"}, 422, "name_invalid"},
		{"PATCH display phone", "PATCH", "/api/v1/channels/" + wa, map[string]any{"display_phone": strings.Repeat("1", 33)}, 422, "display_phone_invalid"},
		{"workspace name", "POST", "/api/v1/workspaces", map[string]any{"name": "A\u2066B"}, 422, "name_invalid"},
		{"long timezone", "POST", "/api/v1/workspaces", map[string]any{"name": "A", "timezone": strings.Repeat("Europe/", 100)}, 422, "timezone_invalid"},
		{"token name length", "POST", "/api/v1/workspaces/" + ws + "/tokens", map[string]any{"name": strings.Repeat("t", 201)}, 422, "name_invalid"},
		{"token name control", "POST", "/api/v1/workspaces/" + ws + "/tokens", map[string]any{"name": "crm\r\nX-Injected: 1"}, 422, "name_invalid"},
		{"field of the wrong type", "POST", "/api/v1/channels", good(map[string]any{"send_rate": "fast"}), 400, "invalid_json"},
	}
	for _, c := range cases {
		st, body := e.Do(c.method, c.path, c.body)
		if st != c.code || errCode(body) != c.err {
			t.Errorf("%s: %d %v, want %d %s", c.name, st, body, c.code, c.err)
		}
	}
	// Nothing refused above reached Meta or the database.
	if n := countGraph(e, "GET", "/v25.0/100000000000001"); n != 0 {
		t.Errorf("refused requests reached Meta %d times", n)
	}

	// A form-encoded body is told the API takes JSON, in words.
	st, raw := rawDo(t, e, "POST", "/api/v1/channels", "application/x-www-form-urlencoded", "type=whatsapp&name=x")
	if st != http.StatusBadRequest || !strings.Contains(raw, `"invalid_json"`) || !strings.Contains(raw, "takes a JSON object") ||
		strings.Contains(raw, "invalid character") {
		t.Errorf("form body: %d %s", st, raw)
	}
	st, raw = rawDo(t, e, "POST", "/api/v1/channels", "application/json", "")
	if st != http.StatusBadRequest || !strings.Contains(raw, "body is empty") {
		t.Errorf("empty body: %d %s", st, raw)
	}
	// A phone number where Meta's id of it belongs.
	st, body := e.Do("POST", "/api/v1/channels", good(map[string]any{"phone_number_id": "+7 701 234 56 78"}))
	if msg, _ := get(body, "error", "message").(string); st != 422 || !strings.Contains(msg, "not the phone number itself") || !strings.Contains(msg, "display_phone") {
		t.Errorf("phone as phone_number_id: %d %v", st, body)
	}
	// Error text keeps < and > as they are.
	st, raw = rawDo(t, e, "POST", "/api/v1/workspaces", "application/json", `{"name":"A","timezone":"<Mars>"}`)
	if st != 422 || !strings.Contains(raw, `<Mars>`) || strings.Contains(raw, `\u003c`) {
		t.Errorf("escaped error text: %d %s", st, raw)
	}

	// POST answers the same shape as GET and PATCH: the bare channel.
	e.Sim.AddWhatsAppNumber(phoneB, wabaB, "+7 916 000 00 11", tokenB)
	st, created := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "<Склад>", "phone_number_id": phoneB, "waba_id": wabaB, "access_token": tokenB})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, created)
	}
	_, got := e.Do("GET", "/api/v1/channels/"+created["id"].(string), nil)
	_, patched := e.Do("PATCH", "/api/v1/channels/"+created["id"].(string), map[string]any{"send_rate": 10})
	if keys(created) != keys(got) || keys(patched) != keys(got) || created["name"] != "<Склад>" {
		t.Errorf("shapes differ:\nPOST  %s\nGET   %s\nPATCH %s", keys(created), keys(got), keys(patched))
	}
}

func keys(m map[string]any) string {
	var b bytes.Buffer
	for _, k := range []string{"id", "workspace_id", "type", "name", "state", "phone_number_id", "waba_id", "display_phone", "created_at", "updated_at", "channel"} {
		_, ok := m[k]
		fmt.Fprintf(&b, "%s:%v ", k, ok)
	}
	return b.String()
}

// Item 4: the operator moves a channel with its history to another
// workspace; its bindings to the old workspace's CRM go, so that CRM
// neither gets its new messages nor reaches its customers.
func TestMoveChannel(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, wsOld := e.InstallBitrix24()
		ch := createWAIn(t, e, wsOld)
		bindLine(t, e, integ, ch, "1")
		if _, _, err := e.Sim.SendWhatsAppImage(context.Background(), apptest.PhoneNumberID, customer, "Анна", "image/jpeg", []byte("\xff\xd8\xff\xe0jpeg"), "фото"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("message in the open line", func() bool { return len(inboundOnLine(e, 1)) == 1 })
		e.WaitIdle()
		in := inboundOnLine(e, 1)[0]
		wsNew, tokNew := workspaceWithToken(t, e, "Новый")
		_, tokOld := e.Do("POST", "/api/v1/workspaces/"+wsOld+"/tokens", nil)

		// Only the operator moves channels.
		if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/move", map[string]any{"workspace_id": wsNew}, tokOld["token"].(string)); st != http.StatusForbidden {
			t.Fatalf("a workspace token moved a channel: %d %v", st, body)
		}
		if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/move", map[string]any{"workspace_id": "01M84V3BMG32ZGESSX3PYXJWM8"}); st != http.StatusNotFound || errCode(body) != "workspace_not_found" {
			t.Fatalf("move to nowhere: %d %v", st, body)
		}
		st, moved := e.Do("POST", "/api/v1/channels/"+ch+"/move", map[string]any{"workspace_id": wsNew})
		if st != http.StatusOK || moved["id"] != ch || moved["workspace_id"] != wsNew || moved["phone_number_id"] != apptest.PhoneNumberID {
			t.Fatalf("move: %d %v", st, moved)
		}

		// The history went with it; the old workspace sees nothing.
		if st, _ := e.Do("GET", "/api/v1/channels/"+ch+"/messages", nil, tokOld["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("old workspace still reads the channel: %d", st)
		}
		st, list := e.Do("GET", "/api/v1/channels/"+ch+"/messages", nil, tokNew)
		if st != http.StatusOK || len(list["data"].([]any)) != 1 {
			t.Fatalf("new workspace reads: %d %v", st, list)
		}
		for _, table := range []string{"contacts", "messages", "media"} {
			var left int64
			e.App.DB.Gorm.Table(table).Where("channel_id = ? AND workspace_id <> ?", ch, wsNew).Count(&left)
			if left != 0 {
				t.Errorf("%d %s rows stayed in the old workspace", left, table)
			}
		}
		var bindings, links int64
		e.App.DB.Gorm.Table("channel_bindings").Where("channel_id = ?", ch).Count(&bindings)
		e.App.DB.Gorm.Table("crm_links").Where("integration_id = ? AND (local_id IN (SELECT id FROM contacts WHERE channel_id = ?) OR local_id IN (SELECT id FROM messages WHERE channel_id = ?))", integ, ch, ch).Count(&links)
		if bindings != 0 || links != 0 {
			t.Fatalf("left behind: %d bindings, %d CRM links", bindings, links)
		}

		// The old portal gets no new message, and its operator cannot
		// write to the customer any more.
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Ещё вопрос"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("second message stored", func() bool {
			_, l := e.Do("GET", "/api/v1/channels/"+ch+"/messages", nil, tokNew)
			return len(l["data"].([]any)) == 2
		})
		if _, err := e.B24.OperatorReply(context.Background(), apptest.B24MemberID, "1", in.ChatID, "Ответ из старого портала"); err != nil {
			t.Fatal(err)
		}
		e.WaitIdle()
		if n := len(inboundOnLine(e, 1)); n != 1 {
			t.Errorf("the old portal's line got %d messages after the move", n)
		}
		if n := len(graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages")); n != 0 {
			t.Errorf("the old portal's operator reached the customer: %d sends", n)
		}
	})
}
