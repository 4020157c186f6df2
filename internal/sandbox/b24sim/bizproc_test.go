package b24sim

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const robotHandler = "https://connector.example.com/b24/robot"

// robotParams is a bizproc.robot.add body like the docs' example.
func robotParams(code, subscription string) map[string]any {
	return map[string]any{
		"CODE":             code,
		"HANDLER":          robotHandler,
		"AUTH_USER_ID":     27,
		"NAME":             map[string]any{"ru": "Отправить в WhatsApp", "en": "Send to WhatsApp"},
		"USE_SUBSCRIPTION": subscription,
		"PROPERTIES": map[string]any{
			"phone":    map[string]any{"Name": "Phone", "Type": "string", "Required": "Y"},
			"text":     map[string]any{"Name": map[string]any{"en": "Text"}, "Type": "text", "Default": "Hello"},
			"template": map[string]any{"Name": "Template", "Type": "select", "Options": map[string]any{"a": "A", "b": "B"}, "Default": "a"},
		},
		"RETURN_PROPERTIES": map[string]any{
			"messageId": map[string]any{"Name": "Message id", "Type": "string"},
		},
	}
}

func TestRobotRegistration(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	r := env.ok(t, "bizproc.robot.add", robotParams("acme.send-wa_1", "Y"))
	if r.body["result"] != true {
		t.Fatalf("add: %s", r.raw)
	}

	// Same code again.
	r = env.rest(t, env.access, "bizproc.robot.add", robotParams("acme.send-wa_1", "N"))
	if r.status != http.StatusBadRequest || r.errCode() != "ERROR_ACTIVITY_ALREADY_INSTALLED" || r.body["error_description"] != "Activity or Robot already installed!" {
		t.Errorf("duplicate: %d %s", r.status, r.raw)
	}

	// Validation, in Bitrix24's order and wording.
	bad := []struct {
		name, code, desc string
		mutate           func(map[string]any)
	}{
		{"no code", "ERROR_ACTIVITY_VALIDATION_FAILURE", "Empty activity code!", func(p map[string]any) { delete(p, "CODE") }},
		{"bad code", "ERROR_ACTIVITY_VALIDATION_FAILURE", "Wrong activity code!", func(p map[string]any) { p["CODE"] = "send wa" }},
		{"no handler", "ERROR_WRONG_HANDLER_URL", "Wrong handler URL", func(p map[string]any) { delete(p, "HANDLER") }},
		{"ftp handler", "ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol", func(p map[string]any) { p["HANDLER"] = "ftp://connector.example.com/x" }},
		{"no name", "ERROR_ACTIVITY_VALIDATION_FAILURE", "Empty activity NAME!", func(p map[string]any) { delete(p, "NAME") }},
		{"bad property key", "ERROR_ACTIVITY_VALIDATION_FAILURE", "Wrong property key (1phone)!", func(p map[string]any) {
			p["PROPERTIES"] = map[string]any{"1phone": map[string]any{"Name": "x"}}
		}},
		{"property without name", "ERROR_ACTIVITY_VALIDATION_FAILURE", "Empty property NAME (phone)!", func(p map[string]any) {
			p["PROPERTIES"] = map[string]any{"phone": map[string]any{"Type": "string"}}
		}},
		{"properties not a map", "ERROR_ACTIVITY_VALIDATION_FAILURE", "Wrong properties array!", func(p map[string]any) { p["RETURN_PROPERTIES"] = "x" }},
		{"placement without handler", "ERROR_WRONG_HANDLER_URL", "Wrong handler URL", func(p map[string]any) { p["USE_PLACEMENT"] = "Y" }},
	}
	for _, tc := range bad {
		p := robotParams("other", "Y")
		tc.mutate(p)
		r := env.rest(t, env.access, "bizproc.robot.add", p)
		if r.status != http.StatusBadRequest || r.errCode() != tc.code || r.body["error_description"] != tc.desc {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}

	// Form-encoded registration with lower-case keys works too.
	form := url.Values{
		"auth": {env.access}, "code": {"second"}, "handler": {robotHandler}, "name": {"Second"},
		"properties[note][Name]": {"Note"}, "properties[note][Multiple]": {"Y"},
		"properties[note][Default][0]": {"a"}, "properties[note][Default][1]": {"b"},
	}
	if r := env.restForm(t, "bizproc.robot.add", form.Encode()); r.status != 200 || r.body["result"] != true {
		t.Fatalf("form add: %d %s", r.status, r.raw)
	}

	// Inside a batch (commands run in JSON key order, sorted here), as an
	// installer registers everything at once; the duplicate is reported per
	// command.
	cmd := url.Values{"CODE": {"third"}, "HANDLER": {robotHandler}, "NAME[ru]": {"Третий"}, "NAME[en]": {"Third"},
		"USE_SUBSCRIPTION": {"Y"}, "PROPERTIES[phone][Name][en]": {"Phone"}, "PROPERTIES[phone][Required]": {"Y"}}
	r = env.ok(t, "batch", map[string]any{"halt": 0, "cmd": map[string]any{
		"a_robot": "bizproc.robot.add?" + cmd.Encode(),
		"b_again": "bizproc.robot.add?" + cmd.Encode(),
	}})
	if dig(r.body, "result", "result", "a_robot") != true || dig(r.body, "result", "result_error", "b_again", "error") != "ERROR_ACTIVITY_ALREADY_INSTALLED" {
		t.Errorf("batch: %s", r.raw)
	}
	if rb := env.portal.Robots()[2]; rb.Name != "Третий" || rb.NameLang["en"] != "Third" || !rb.Properties["phone"].Required || rb.Properties["phone"].Name != "Phone" {
		t.Errorf("batch robot: %+v", rb)
	}
	env.ok(t, "bizproc.robot.delete", map[string]any{"code": "third"})

	r = env.ok(t, "bizproc.robot.list", nil)
	if got := dig(r.body, "result"); !reflect.DeepEqual(got, []any{"acme.send-wa_1", "second"}) {
		t.Errorf("list: %s", r.raw)
	}

	robots := env.portal.Robots()
	if len(robots) != 2 {
		t.Fatalf("Robots: %+v", robots)
	}
	rb := robots[0]
	if rb.Code != "acme.send-wa_1" || rb.Handler != robotHandler || rb.AuthUserID != 27 || rb.UseSubscription != "Y" ||
		rb.Name != "Отправить в WhatsApp" || rb.NameLang["en"] != "Send to WhatsApp" {
		t.Errorf("robot: %+v", rb)
	}
	if p := rb.Properties["phone"]; p.Name != "Phone" || p.Type != "string" || !p.Required || p.Multiple {
		t.Errorf("phone property: %+v", p)
	}
	if p := rb.Properties["text"]; p.Name != "Text" || p.Default != "Hello" {
		t.Errorf("text property: %+v", p)
	}
	if p := rb.Properties["template"]; !reflect.DeepEqual(p.Options, map[string]any{"a": "A", "b": "B"}) {
		t.Errorf("template options: %+v", p)
	}
	if !slices.Equal(rb.PropertyOrder, []string{"phone", "template", "text"} /* JSON object order (Go sorts map keys) */) || rb.ReturnProperties["messageId"].Name != "Message id" {
		t.Errorf("order / return properties: %v %+v", rb.PropertyOrder, rb.ReturnProperties)
	}
	if p := robots[1].Properties["note"]; !p.Multiple || !reflect.DeepEqual(p.Default, []any{"a", "b"}) {
		t.Errorf("form property: %+v", p)
	}

	// update.
	env.ok(t, "bizproc.robot.update", map[string]any{"CODE": "second", "FIELDS": map[string]any{
		"HANDLER": "https://connector.example.com/b24/robot2", "USE_SUBSCRIPTION": "Y", "NAME": "Renamed",
	}})
	if rb := env.portal.Robots()[1]; rb.Handler != "https://connector.example.com/b24/robot2" || rb.UseSubscription != "Y" || rb.Name != "Renamed" || rb.Properties["note"].Name != "Note" {
		t.Errorf("updated: %+v", rb)
	}
	if r := env.rest(t, env.access, "bizproc.robot.update", map[string]any{"CODE": "second"}); r.errCode() != "ERROR_ACTIVITY_VALIDATION_FAILURE" {
		t.Errorf("update without fields: %d %s", r.status, r.raw)
	}
	if r := env.rest(t, env.access, "bizproc.robot.update", map[string]any{"CODE": "nope", "FIELDS": map[string]any{"NAME": "x"}}); r.status != 400 || r.errCode() != "ERROR_ACTIVITY_NOT_FOUND" {
		t.Errorf("update unknown: %d %s", r.status, r.raw)
	}

	// delete.
	if r := env.ok(t, "bizproc.robot.delete", map[string]any{"CODE": "second"}); r.body["result"] != true {
		t.Errorf("delete: %s", r.raw)
	}
	r = env.rest(t, env.access, "bizproc.robot.delete", map[string]any{"CODE": "second"})
	if r.status != http.StatusBadRequest || r.errCode() != "ERROR_ACTIVITY_NOT_FOUND" || r.body["error_description"] != "Activity or Robot not found!" {
		t.Errorf("delete unknown: %d %s", r.status, r.raw)
	}
	if r := env.ok(t, "bizproc.robot.list", nil); !reflect.DeepEqual(dig(r.body, "result"), []any{"acme.send-wa_1"}) {
		t.Errorf("list after delete: %s", r.raw)
	}

	// Only administrators manage robots.
	userTok := env.sim.UserToken(testMemberID, 27)
	for _, m := range []string{"bizproc.robot.add", "bizproc.robot.list", "bizproc.robot.delete"} {
		r := env.rest(t, userTok, m, robotParams("x", "Y"))
		if r.status != http.StatusForbidden || r.errCode() != "ACCESS_DENIED" || r.body["error_description"] != "Access denied!" {
			t.Errorf("%s as non-admin: %d %s", m, r.status, r.raw)
		}
	}

	// Without the bizproc scope the methods are out of reach.
	other := env.sim.AddPortal(PortalOptions{Scope: "crm,placement"})
	tok, _ := env.sim.InstallTokens(other.MemberID())
	if r := env.rest(t, tok, "bizproc.robot.list", nil); r.status != http.StatusForbidden || r.errCode() != "insufficient_scope" {
		t.Errorf("no scope: %d %s", r.status, r.raw)
	}
}

var (
	workflowIDRe = regexp.MustCompile(`^[0-9a-f]{14}\.[0-9]{8}$`)
	eventTokenRe = regexp.MustCompile(`^([0-9a-f]{14}\.[0-9]{8})\|A[0-9]{5}_[0-9]{5}_[0-9]{5}_[0-9]{5}\|[A-Za-z0-9]{32}\.[0-9a-f]{64}$`)
)

func TestRunRobot(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	h := newHandlerStub(t)
	p := robotParams("send_wa", "Y")
	p["HANDLER"] = h.URL + "/robot"
	env.ok(t, "bizproc.robot.add", p)

	token, status, err := env.sim.RunRobot(context.Background(), testMemberID, "send_wa",
		[]string{"crm", "CCrmDocumentDeal", "DEAL_8061"}, map[string]string{"phone": "+79161234567"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("RunRobot: %d %v", status, err)
	}
	bodies := h.received()
	if len(bodies) != 1 {
		t.Fatalf("handler got %d posts", len(bodies))
	}
	// Key order as CBPRestActivity builds the query item, brackets encoded.
	var order []string
	for _, kv := range strings.Split(bodies[0], "&") {
		k, _, _ := strings.Cut(kv, "=")
		k, _ = url.QueryUnescape(k)
		order = append(order, k)
	}
	want := []string{
		"workflow_id", "code", "document_id[0]", "document_id[1]", "document_id[2]",
		"document_type[0]", "document_type[1]", "document_type[2]", "event_token",
		"properties[phone]", "properties[template]", "properties[text]", // registration order
		"use_subscription", "timeout_duration", "ts",
		"auth[access_token]", "auth[expires]", "auth[expires_in]", "auth[scope]", "auth[domain]",
		"auth[server_endpoint]", "auth[status]", "auth[client_endpoint]", "auth[member_id]", "auth[user_id]",
		"auth[refresh_token]", "auth[application_token]",
	}
	if !slices.Equal(order, want) {
		t.Errorf("keys:\ngot  %v\nwant %v", order, want)
	}
	formKeys(t, bodies[0]) // fails on raw brackets

	f, _ := url.ParseQuery(bodies[0])
	m := eventTokenRe.FindStringSubmatch(f.Get("event_token"))
	if m == nil || f.Get("event_token") != token || m[1] != f.Get("workflow_id") || !workflowIDRe.MatchString(f.Get("workflow_id")) {
		t.Errorf("token %q / workflow %q", f.Get("event_token"), f.Get("workflow_id"))
	}
	checks := map[string]string{
		"code": "send_wa", "document_id[0]": "crm", "document_id[1]": "CCrmDocumentDeal", "document_id[2]": "DEAL_8061",
		"document_type[0]": "crm", "document_type[1]": "CCrmDocumentDeal", "document_type[2]": "DEAL",
		"properties[phone]": "+79161234567", "properties[text]": "Hello", "properties[template]": "a",
		"use_subscription": "Y", "timeout_duration": "0", "ts": strconv.FormatInt(env.clock.Now().Unix(), 10),
		"auth[expires_in]": "3600", "auth[scope]": DefaultScope, "auth[domain]": testDomain, "auth[status]": "P",
		"auth[client_endpoint]": env.srv.URL + "/rest/", "auth[member_id]": testMemberID, "auth[user_id]": "27",
		"auth[application_token]": testAppToken,
		"auth[expires]":           strconv.FormatInt(env.clock.Now().Unix()+3600, 10),
	}
	for k, v := range checks {
		if f.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, f.Get(k), v)
		}
	}
	// The token acts as AUTH_USER_ID.
	if r := env.ok(t, "user.current", nil); r.body == nil {
		t.Fatal("user.current")
	}
	r := env.rest(t, f.Get("auth[access_token]"), "user.current", nil)
	if dig(r.body, "result", "ID") != "27" {
		t.Errorf("robot token user: %s", r.raw)
	}

	d := env.sim.Deliveries()
	if len(d) != 1 || d[0].Event != RobotRunEvent || d[0].Handler != h.URL+"/robot" || d[0].Status != 200 || d[0].Body != bodies[0] {
		t.Errorf("delivery: %+v", d)
	}

	// Other document types; a Multiple property arrives as a list; no
	// AUTH_USER_ID means the admin's token; an unsubscribed robot says N.
	env.ok(t, "bizproc.robot.add", map[string]any{
		"CODE": "note", "HANDLER": h.URL + "/note", "NAME": "Note",
		"PROPERTIES": map[string]any{"tags": map[string]any{"Name": "Tags", "Multiple": "Y", "Default": []string{"x", "y"}}},
	})
	if _, _, err := env.sim.RunRobot(context.Background(), testMemberID, "note", []string{"crm", "Bitrix\\Crm\\Integration\\BizProc\\Document\\Dynamic", "DYNAMIC_128_5"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.sim.RunRobot(context.Background(), testMemberID, "note", []string{"crm", "CCrmDocumentLead", "LEAD_7"}, map[string]string{"tags": "z"}); err != nil {
		t.Fatal(err)
	}
	bodies = h.received()
	f1, _ := url.ParseQuery(bodies[1])
	f2, _ := url.ParseQuery(bodies[2])
	if f1.Get("document_type[2]") != "DYNAMIC_128" || f1.Get("properties[tags][0]") != "x" || f1.Get("properties[tags][1]") != "y" ||
		f1.Get("use_subscription") != "N" || f1.Get("auth[user_id]") != "1" {
		t.Errorf("dynamic run: %v", f1)
	}
	if f2.Get("document_type[2]") != "LEAD" || f2.Get("properties[tags][0]") != "z" || f2.Has("properties[tags][1]") {
		t.Errorf("lead run: %v", f2)
	}

	// No retries: a failing handler is attempted once and reported.
	h.setStatus(http.StatusInternalServerError)
	if _, status, err := env.sim.RunRobot(context.Background(), testMemberID, "note", []string{"crm", "CCrmDocumentDeal", "DEAL_1"}, nil); err != nil || status != 500 {
		t.Errorf("failing handler: %d %v", status, err)
	}
	if len(h.received()) != 4 {
		t.Errorf("retried: %d posts", len(h.received()))
	}

	// Setup errors.
	if _, _, err := env.sim.RunRobot(context.Background(), testMemberID, "nope", []string{"crm", "CCrmDocumentDeal", "DEAL_1"}, nil); !errors.Is(err, ErrUnknownRobot) {
		t.Errorf("unknown robot: %v", err)
	}
	if _, _, err := env.sim.RunRobot(context.Background(), testMemberID, "note", []string{"crm", "DEAL_1"}, nil); err == nil {
		t.Error("short document id accepted")
	}
	if _, _, err := env.sim.RunRobot(context.Background(), testMemberID, "note", []string{"crm", "CCrmDocumentDeal", "DEAL_1"}, map[string]string{"bogus": "1"}); err == nil {
		t.Error("unregistered property accepted")
	}
}

func TestEventSend(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	h := newHandlerStub(t)
	sub := robotParams("wait", "Y")
	sub["HANDLER"] = h.URL
	env.ok(t, "bizproc.robot.add", sub)
	fire := robotParams("fire", "N")
	fire["HANDLER"] = h.URL
	env.ok(t, "bizproc.robot.add", fire)
	doc := []string{"crm", "CCrmDocumentDeal", "DEAL_8061"}
	token, _, err := env.sim.RunRobot(context.Background(), testMemberID, "wait", doc, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Answered with the token from the event, as the app would: a user
	// token (any user may call it), lower-case keys.
	userTok := env.sim.UserToken(testMemberID, 27)
	r := env.rest(t, userTok, "bizproc.event.send", map[string]any{
		"event_token": token, "return_values": map[string]any{"messageId": "wamid.X"}, "log_message": "sent",
	})
	if r.status != http.StatusOK || r.body["result"] != true {
		t.Fatalf("event.send: %d %s", r.status, r.raw)
	}
	res := env.portal.RobotResults()
	if len(res) != 1 || res[0].EventToken != token || res[0].Code != "wait" || !slices.Equal(res[0].DocumentID, doc) ||
		!reflect.DeepEqual(res[0].ReturnValues, map[string]any{"messageId": "wamid.X"}) || res[0].LogMessage != "sent" ||
		res[0].UserID != 27 || !res[0].Time.Equal(env.clock.Now()) {
		t.Errorf("results: %+v", res)
	}

	denied := func(name string, r response) {
		t.Helper()
		if r.status != http.StatusForbidden || r.errCode() != "ACCESS_DENIED" || r.body["error_description"] != "Access denied!" {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	// Second answer, unknown token, no token.
	denied("answered twice", env.rest(t, env.access, "bizproc.event.send", map[string]any{"EVENT_TOKEN": token}))
	denied("unknown token", env.rest(t, env.access, "bizproc.event.send", map[string]any{"EVENT_TOKEN": token + "x"}))
	denied("no token", env.rest(t, env.access, "bizproc.event.send", nil))
	// A robot without subscription does not wait.
	fireTok, _, err := env.sim.RunRobot(context.Background(), testMemberID, "fire", doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	denied("no subscription", env.rest(t, env.access, "bizproc.event.send", map[string]any{"EVENT_TOKEN": fireTok}))

	// A token of one portal means nothing on another.
	token2, _, err := env.sim.RunRobot(context.Background(), testMemberID, "wait", doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := env.sim.AddPortal(PortalOptions{})
	otherTok, _ := env.sim.InstallTokens(other.MemberID())
	denied("other portal", env.rest(t, otherTok, "bizproc.event.send", map[string]any{"EVENT_TOKEN": token2}))
	// ...and still works on its own, form-encoded.
	form := url.Values{"auth": {env.access}, "EVENT_TOKEN": {token2}, "RETURN_VALUES[messageId]": {"wamid.Y"}}
	if r := env.restForm(t, "bizproc.event.send", form.Encode()); r.status != 200 {
		t.Errorf("form event.send: %d %s", r.status, r.raw)
	}
	if res := env.portal.RobotResults(); len(res) != 2 || res[1].ReturnValues["messageId"] != "wamid.Y" {
		t.Errorf("results: %+v", res)
	}
	if len(other.RobotResults()) != 0 {
		t.Error("result recorded on the wrong portal")
	}
}
