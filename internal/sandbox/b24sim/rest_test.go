package b24sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParsePHPQuery(t *testing.T) {
	tests := []struct {
		in   string
		want string // JSON of the decoded array
	}{
		{"a=1&b=2", `{"a":"1","b":"2"}`},
		{"fields%5BPHONE%5D%5B0%5D%5BVALUE%5D=%2B7+916&fields%5BPHONE%5D%5B0%5D%5BVALUE_TYPE%5D=MOBILE&fields%5BNAME%5D=Anna",
			`{"fields":{"PHONE":[{"VALUE":"+7 916","VALUE_TYPE":"MOBILE"}],"NAME":"Anna"}}`},
		{"select[]=ID&select[]=TITLE", `{"select":["ID","TITLE"]}`},
		{"order[ID]=DESC&filter[%3EID]=5", `{"order":{"ID":"DESC"},"filter":{">ID":"5"}}`},
		{"a[x]=1&a=2", `{"a":"2"}`},                      // a scalar overwrites
		{"a=2&a[x]=1", `{"a":{"x":"1"}}`},                // and an array overwrites a scalar
		{"bad=%zz&[x]=1&c[d=1", `{"bad":"%zz","c":"1"}`}, // lenient like PHP
		{"m[2]=b&m[0]=a", `{"m":{"2":"b","0":"a"}}`},     // not list-shaped: object in order
	}
	for _, tt := range tests {
		a := newPHPArray()
		parsePHPQuery(tt.in, a)
		got, err := marshalJSON(a)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("parsePHPQuery(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParamsFromQueryFormAndJSON(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	// Query string auth with bracket keys in the body.
	body := "fields%5BNAME%5D=Anna&fields%5BPHONE%5D%5B0%5D%5BVALUE%5D=%2B7%20916%20123-45-67&fields%5BPHONE%5D%5B0%5D%5BVALUE_TYPE%5D=MOBILE"
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/rest/crm.contact.add?auth="+env.access, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := do(t, req)
	if r.status != 200 {
		t.Fatalf("form add: %d %s", r.status, r.raw)
	}
	id := int(r.body["result"].(float64))
	// Form auth, GET-style query for get.
	r = env.restForm(t, "crm.contact.get.json", url.Values{"auth": {env.access}, "id": {fmt.Sprint(id)}}.Encode())
	if r.status != 200 || dig(r.body, "result", "PHONE", 0, "VALUE") != "+7 916 123-45-67" || dig(r.body, "result", "NAME") != "Anna" ||
		dig(r.body, "result", "ID") != fmt.Sprint(id) || dig(r.body, "result", "HAS_PHONE") != "Y" {
		t.Errorf("get: %d %s", r.status, r.raw)
	}
	reqs := env.sim.Requests()
	if reqs[0].AuthIn != "query" || reqs[1].AuthIn != "form" || reqs[0].RESTMethod != "crm.contact.add" || reqs[1].RESTMethod != "crm.contact.get" {
		t.Errorf("recorded: %+v", reqs[:2])
	}
	if _, ok := reqs[0].Params["auth"]; ok {
		t.Errorf("auth kept in Params")
	}
	if got := dig(reqs[0].Params, "fields", "PHONE", 0, "VALUE_TYPE"); got != "MOBILE" {
		t.Errorf("decoded params: %#v", reqs[0].Params)
	}
	calls := env.sim.Calls("CRM.CONTACT.ADD.json")
	if len(calls) != 1 || !calls[0].OK() || calls[0].UserID != 1 || calls[0].MemberID != testMemberID {
		t.Errorf("Calls: %+v", calls)
	}
}

func TestUnknownMethodAndEnvelope(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	r := env.rest(t, env.access, "crm.nonsense.get", nil)
	if r.status != http.StatusNotFound || r.errCode() != "ERROR_METHOD_NOT_FOUND" {
		t.Errorf("unknown: %d %s", r.status, r.raw)
	}
	r = env.ok(t, "imopenlines.config.list.get", nil)
	assertSameShape(t, r.raw, "imopenlines-config-list-get-response.json")
	if dig(r.body, "time", "date_start") != "2025-12-30T14:30:00+03:00" {
		t.Errorf("time: %s", r.raw)
	}
	// Webhook-style URLs are not for apps.
	req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/rest/1/abcdef/app.info", nil)
	if r := do(t, req); r.status != http.StatusUnauthorized {
		t.Errorf("webhook path: %d %s", r.status, r.raw)
	}
	// A scope the app card lacks.
	env2 := newSim(t, Options{}, PortalOptions{MemberID: "00000000000000000000000000000002", Scope: "imconnector,imopenlines"})
	if r := env2.rest(t, env2.access, "crm.deal.list", nil); r.status != http.StatusForbidden || r.errCode() != "insufficient_scope" {
		t.Errorf("scope: %d %s", r.status, r.raw)
	}
	// Injected failures.
	env.sim.FailNext(testMemberID, "user.current", 1, http.StatusTooManyRequests, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.")
	r = env.rest(t, env.access, "user.current", nil)
	if r.status != http.StatusTooManyRequests {
		t.Errorf("injected: %d", r.status)
	}
	assertSameJSON(t, r.raw, "error-operation-time-limit.json")
	env.ok(t, "user.current", nil)
}

func TestLeakyBucket(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	for i := range DefaultLeakBurst {
		if r := env.rest(t, env.access, "app.info", nil); r.status != 200 {
			t.Fatalf("call %d: %d %s", i, r.status, r.raw)
		}
	}
	r := env.rest(t, env.access, "app.info", nil)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("call 51: %d %s", r.status, r.raw)
	}
	assertSameJSON(t, r.raw, "error-query-limit-exceeded.json")

	// 2 per second drain: after 0.5 s exactly one more request fits.
	env.clock.Advance(500 * time.Millisecond)
	if r := env.rest(t, env.access, "app.info", nil); r.status != 200 {
		t.Errorf("after 0.5 s: %d", r.status)
	}
	if r := env.rest(t, env.access, "app.info", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("second after 0.5 s: %d", r.status)
	}
	// A batch of several commands is one request.
	env.clock.Advance(500 * time.Millisecond)
	r = env.rest(t, env.access, "batch", map[string]any{"cmd": map[string]any{"a": "app.info", "b": "user.current", "c": "scope"}})
	if r.status != 200 || len(dig(r.body, "result", "result").(map[string]any)) != 3 {
		t.Errorf("batch under limit: %d %s", r.status, r.raw)
	}
	if r := env.rest(t, env.access, "app.info", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("after batch: %d", r.status)
	}
	// Fully drained after 25 s.
	env.clock.Advance(25 * time.Second)
	for i := range DefaultLeakBurst {
		if r := env.rest(t, env.access, "app.info", nil); r.status != 200 {
			t.Fatalf("recovered call %d: %d", i, r.status)
		}
	}
	// Other portals have their own bucket.
	other := env.sim.AddPortal(PortalOptions{MemberID: "00000000000000000000000000000009"})
	tok, _ := env.sim.InstallTokens(other.MemberID())
	if r := env.rest(t, tok, "app.info", nil); r.status != 200 {
		t.Errorf("other portal: %d", r.status)
	}

	disabled := newSim(t, Options{LeakBurst: -1}, PortalOptions{})
	for range 100 {
		if r := disabled.rest(t, disabled.access, "app.info", nil); r.status != 200 {
			t.Fatalf("disabled bucket: %d", r.status)
		}
	}
}

func TestPagination(t *testing.T) {
	env := newSim(t, Options{LeakBurst: -1}, PortalOptions{})
	for i := range 120 {
		env.sim.AddContact(testMemberID, map[string]any{"NAME": fmt.Sprintf("C%03d", i), "SOURCE_ID": []string{"WEB", "CALL"}[i%2]})
	}
	r := env.ok(t, "crm.contact.list", map[string]any{"start": 0})
	if n := len(r.body["result"].([]any)); n != 50 || r.body["total"] != float64(120) || r.body["next"] != float64(50) {
		t.Errorf("page 1: %d items, total %v next %v", n, r.body["total"], r.body["next"])
	}
	r = env.ok(t, "crm.contact.list", map[string]any{"start": r.body["next"]})
	if dig(r.body, "result", 0, "NAME") != "C050" || r.body["next"] != float64(100) {
		t.Errorf("page 2: %v next %v", dig(r.body, "result", 0, "NAME"), r.body["next"])
	}
	r = env.ok(t, "crm.contact.list", map[string]any{"start": 100})
	if n := len(r.body["result"].([]any)); n != 20 || r.body["total"] != float64(120) {
		t.Errorf("last page: %d items total %v", n, r.body["total"])
	}
	if _, ok := r.body["next"]; ok {
		t.Errorf("last page has next: %s", r.raw)
	}
	// Fast mode: no total, no next.
	r = env.ok(t, "crm.contact.list", map[string]any{"start": -1, "filter": map[string]any{">ID": 150}, "order": map[string]any{"ID": "ASC"}})
	if _, ok := r.body["total"]; ok || len(r.body["result"].([]any)) != 50 || dig(r.body, "result", 0, "ID") != "151" {
		t.Errorf("fast mode: %s", string(r.raw[:200]))
	}
	// Filter, order and select, with a form-encoded GET.
	q := "auth=" + env.access + "&filter%5BSOURCE_ID%5D=CALL&order%5BID%5D=DESC&select%5B0%5D=NAME&start=0"
	req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/rest/crm.contact.list?"+q, nil)
	r = do(t, req)
	first, _ := dig(r.body, "result", 0).(map[string]any)
	if r.body["total"] != float64(60) || first["NAME"] != "C119" || len(first) != 2 {
		t.Errorf("filtered: total %v first %v", r.body["total"], first)
	}
}

func TestBatch(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	contact := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Anna", "PHONE": []map[string]any{{"VALUE": "+7 (916) 123-45-67", "VALUE_TYPE": "MOBILE"}}})
	env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "old", "CONTACT_ID": contact, "STAGE_ID": "WON"})
	deal := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "open", "CONTACT_ID": contact, "CATEGORY_ID": 0, "STAGE_ID": "PREPARATION"})

	r := env.restRaw(t, "batch", fixture(t, "batch-request.json"))
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	assertSameShape(t, r.raw, "batch-response.json",
		"$.result.result.me.") // user.current returns the full user record
	if got := dig(r.body, "result", "result", "find", "CONTACT", 0); got != float64(contact) {
		t.Errorf("find: %v", got)
	}
	deals, _ := dig(r.body, "result", "result", "deals").([]any)
	if len(deals) != 1 || dig(deals, 0, "ID") != fmt.Sprint(deal) || len(deals[0].(map[string]any)) != 3 {
		t.Errorf("deals via $result: %v", deals)
	}
	if dig(r.body, "result", "result_total", "deals") != float64(1) {
		t.Errorf("result_total: %s", r.raw)
	}
	calls := env.sim.Calls("crm.deal.list")
	if len(calls) != 1 || !calls[0].InBatch || dig(calls[0].Params, "filter", "CONTACT_ID") != json.Number(fmt.Sprint(contact)) {
		t.Errorf("sub-call params: %+v", calls)
	}

	// A failing sub-command: HTTP 200, result_error filled, others run.
	r = env.ok(t, "batch", map[string]any{"halt": 0, "cmd": map[string]any{
		"me":    "user.current",
		"deals": "crm.deal.get?id=999999",
	}})
	assertSameShape(t, r.raw, "batch-response-with-error.json", "$.result.result.me.")
	if dig(r.body, "result", "result_error", "deals", "error_description") != "Not found" || dig(r.body, "result", "result", "me", "ID") != "1" {
		t.Errorf("with error: %s", r.raw)
	}

	// halt=1 stops at the first error; a list cmd gives list-shaped results.
	r = env.ok(t, "batch", map[string]any{"halt": 1, "cmd": []string{"user.current", "crm.nope", "app.info"}})
	res := dig(r.body, "result", "result")
	if l, ok := res.([]any); !ok || len(l) != 1 || dig(r.body, "result", "result_error", "1", "error") != "ERROR_METHOD_NOT_FOUND" {
		t.Errorf("halt: %s", r.raw)
	}

	// Form encoding: command strings are encoded twice on the wire; a
	// reference inside a longer string and $total[] also work; nested batch
	// is refused.
	cmd := url.Values{}
	cmd.Set("cmd[add]", "crm.contact.add?"+url.Values{"fields[NAME]": {"Boris"}, "fields[PHONE][0][VALUE]": {"+7 999 000-00-01"}}.Encode())
	cmd.Set("cmd[get]", "crm.contact.get?id=$result[add]")
	cmd.Set("cmd[upd]", "crm.contact.update?id=$result[add]&fields[COMMENTS]=id%20$result[add]%20of%20$total[list]")
	cmd.Set("cmd[list]", "crm.contact.list?select[]=ID")
	cmd.Set("cmd[nested]", "batch?cmd[x]=app.info")
	cmd.Set("auth", env.access)
	r = env.restForm(t, "batch", cmd.Encode())
	if r.status != 200 || dig(r.body, "result", "result", "get", "NAME") != "Boris" {
		t.Fatalf("form batch: %d %s", r.status, r.raw)
	}
	if dig(r.body, "result", "result_error", "nested", "error") != "ERROR_BATCH_METHOD_NOT_ALLOWED" {
		t.Errorf("nested batch: %s", r.raw)
	}
	added := dig(r.body, "result", "result", "add").(float64)
	got := env.rest(t, env.access, "crm.contact.get", map[string]any{"id": added})
	// url.Values sorts keys, so "list" ran after "get" but before "upd".
	if want := fmt.Sprintf("id %v of 2", added); dig(got.body, "result", "COMMENTS") != want {
		t.Errorf("inline reference: %q, want %q", dig(got.body, "result", "COMMENTS"), want)
	}

	// More than 50 commands: the first 50 run, the rest are refused one by one.
	many := map[string]any{}
	for i := range 52 {
		many[fmt.Sprintf("c%02d", i)] = "scope"
	}
	r = env.ok(t, "batch", map[string]any{"cmd": many})
	if n := len(dig(r.body, "result", "result").(map[string]any)); n != 50 {
		t.Errorf("ran %d commands", n)
	}
	if dig(r.body, "result", "result_error", "c51", "error") != "ERROR_BATCH_LENGTH_EXCEEDED" {
		t.Errorf("51st: %s", dig(r.body, "result", "result_error"))
	}
}

func TestBatchOrderFollowsJSON(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	// "z" is listed first and must run first even though it sorts last.
	raw := `{"auth":"` + env.access + `","cmd":{"z":"crm.contact.add?fields[NAME]=First","a":"crm.contact.get?id=$result[z]"}}`
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/rest/batch.json", strings.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	r := do(t, req)
	if dig(r.body, "result", "result", "a", "NAME") != "First" {
		t.Errorf("order: %s", r.raw)
	}
	keys := []string{}
	dec := json.NewDecoder(strings.NewReader(string(r.raw)))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok && (s == "z" || s == "a") {
			keys = append(keys, s)
		}
	}
	if !reflect.DeepEqual(keys[:2], []string{"z", "a"}) {
		t.Errorf("result key order %v", keys)
	}
}
