package amosim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fxClientID     = "6a2d4741-1b2c-4d3e-8f90-92277723dcea"
	fxClientSecret = "fake_client_secret_ZpWm7VpAUBvpTzADj4CRHjmuvRR4PwVS7EqVxNvpMglIWK8u"
	fxRedirect     = "https://integration.example.com/amocrm/oauth"
	fxChannelID    = "f90ba33d-c9d9-44da-b76c-c349b0ecbe41"
	fxChannelSec   = "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189"
	fxAccount      = 30123456
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "fixtures", "amocrm", name))
	if err != nil {
		b, err = os.ReadFile(filepath.Join("/work/shared/fixtures/amocrm", name))
	}
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return b
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t   *testing.T
	sim *Server
	srv *httptest.Server
	clk *clock
}

func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	o.ClientID, o.ClientSecret, o.RedirectURI = fxClientID, fxClientSecret, fxRedirect
	o.ChannelID, o.ChannelSecret = fxChannelID, fxChannelSec
	o.Clock = clk.Now
	sim := New(o)
	if err := sim.AddAccount(ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return &env{t: t, sim: sim, srv: srv, clk: clk}
}

// do sends a request and returns status, headers and body.
func (e *env) do(method, path, token, contentType string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (e *env) token() (access, refresh string) {
	e.t.Helper()
	code, err := e.sim.IssueCode(fxAccount)
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"client_id": fxClientID, "client_secret": fxClientSecret,
		"grant_type": "authorization_code", "code": code, "redirect_uri": fxRedirect})
	st, _, b := e.do("POST", "/oauth2/access_token", "", "application/json", body)
	if st != 200 {
		e.t.Fatalf("exchange: %d %s", st, b)
	}
	var tok struct{ AccessToken, RefreshToken string }
	var raw map[string]any
	json.Unmarshal(b, &raw)
	tok.AccessToken, _ = raw["access_token"].(string)
	tok.RefreshToken, _ = raw["refresh_token"].(string)
	return tok.AccessToken, tok.RefreshToken
}

func jsonEqual(t *testing.T, what string, got, want []byte, drop ...string) {
	t.Helper()
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: got is not JSON: %v: %s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	for _, k := range drop {
		delete(g, k)
		delete(w, k)
	}
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.MarshalIndent(g, "", " ")
		wb, _ := json.MarshalIndent(w, "", " ")
		t.Errorf("%s differs from the fixture:\n got %s\nwant %s", what, gb, wb)
	}
}

// The example account answers account, pipelines and users exactly as the
// fixtures do.
func TestFixtureShapes(t *testing.T) {
	e := newEnv(t, Options{})
	tok, _ := e.token()
	st, h, b := e.do("GET", "/api/v4/account?with=amojo_id,amojo_rights,users_groups,task_types,datetime_settings,version", tok, "", nil)
	if st != 200 || h.Get("Content-Type") != "application/hal+json" {
		t.Fatalf("account: %d %s", st, h.Get("Content-Type"))
	}
	jsonEqual(t, "account", b, fixture(t, "account.json"))

	_, _, b = e.do("GET", "/api/v4/leads/pipelines", tok, "", nil)
	jsonEqual(t, "pipelines", b, fixture(t, "pipelines_list.json"))

	_, _, b = e.do("GET", "/api/v4/users?with=amojo_id&page=1&limit=250", tok, "", nil)
	jsonEqual(t, "users", b, fixture(t, "users_list.json"), "_links")
}

func TestContactSearchMatchesPhonesByDigits(t *testing.T) {
	e := newEnv(t, Options{})
	tok, _ := e.token()
	maria := e.sim.PutContact(fxAccount, Contact{ID: 40100001, FirstName: "Мария", LastName: "Клиентова", ResponsibleUserID: 9000002,
		Phones: []Value{{"+7 916 123-45-67", "MOB"}, {"84951234567", "WORK"}}, Emails: []Value{{"maria@example.org", "WORK"}}})
	eight := e.sim.PutContact(fxAccount, Contact{Name: "Восьмёрка", Phones: []Value{{"8 (912) 345-67-89", "MOB"}}})
	other := e.sim.PutContact(fxAccount, Contact{Name: "Платёж", Other: map[int]string{512399: "оплата 9123456789"}})
	cases := []struct {
		query string
		want  []int
	}{
		{"9161234567", []int{maria}},
		{"+79161234567", []int{maria}},
		{"89161234567", nil}, // the prefix matters: 8… does not find +7…
		{"9123456789", []int{eight, other}},
		{"79123456789", nil},
		{"8 (912) 345", []int{eight}},
		{"maria@example", []int{maria}},
		{"клиентова", []int{maria}},
		{"9990000000", nil},
	}
	for _, c := range cases {
		e.clk.Add(time.Second)
		st, _, b := e.do("GET", "/api/v4/contacts?query="+url.QueryEscape(c.query), tok, "", nil)
		var got []int
		if st == 200 {
			var page struct {
				Embedded struct{ Contacts []struct{ ID int } } `json:"_embedded"`
			}
			json.Unmarshal(b, &page)
			for _, ct := range page.Embedded.Contacts {
				got = append(got, ct.ID)
			}
		} else if st != 204 || len(b) != 0 {
			t.Fatalf("query %q: %d %q", c.query, st, b)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("query %q found %v, want %v", c.query, got, c.want)
		}
	}
	// The fixture's contact, read back, has the fixture's fields.
	_, _, b := e.do("GET", "/api/v4/contacts?query=9161234567&with=leads", tok, "", nil)
	var page struct {
		Embedded struct{ Contacts []map[string]any } `json:"_embedded"`
	}
	json.Unmarshal(b, &page)
	var fx struct {
		Embedded struct{ Contacts []map[string]any } `json:"_embedded"`
	}
	json.Unmarshal(fixture(t, "contacts_search_by_phone.json"), &fx)
	if g, w := page.Embedded.Contacts[0]["custom_fields_values"], fx.Embedded.Contacts[0]["custom_fields_values"]; !reflect.DeepEqual(g, w) {
		t.Errorf("custom_fields_values %v, want %v", g, w)
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	code, _ := e.sim.IssueCode(fxAccount)
	form := url.Values{"client_id": {fxClientID}, "client_secret": {fxClientSecret}, "grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {fxRedirect}}
	// A form body works (the SDK's generic client sends one).
	if st, _, b := e.do("POST", "/oauth2/access_token", "", "application/x-www-form-urlencoded", []byte(form.Encode())); st != 200 {
		t.Fatalf("form exchange: %d %s", st, b)
	}
	st, h, b := e.do("POST", "/oauth2/access_token", "", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if st != 400 || h.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), HintCodeRevoked) {
		t.Errorf("reused code: %d %s %s", st, h.Get("Content-Type"), b)
	}
	code, _ = e.sim.IssueCode(fxAccount)
	e.clk.Add(DefaultCodeTTL)
	form.Set("code", code)
	_, _, b = e.do("POST", "/oauth2/access_token", "", "application/x-www-form-urlencoded", []byte(form.Encode()))
	jsonEqual(t, "expired code", b, fixture(t, "oauth_token_error_code_expired.json"))

	code, _ = e.sim.IssueCode(fxAccount)
	form.Set("code", code)
	form.Set("client_secret", "wrong")
	if st, _, _ := e.do("POST", "/oauth2/access_token", "", "application/x-www-form-urlencoded", []byte(form.Encode())); st != 401 {
		t.Errorf("wrong secret: %d", st)
	}
	form.Set("client_secret", fxClientSecret)
	form.Set("redirect_uri", "https://evil.example.com/cb")
	if st, _, _ := e.do("POST", "/oauth2/access_token", "", "application/x-www-form-urlencoded", []byte(form.Encode())); st != 400 {
		t.Errorf("wrong redirect_uri: %d", st)
	}
	// Neither refusal spent the code.
	form.Set("redirect_uri", fxRedirect)
	if st, _, b := e.do("POST", "/oauth2/access_token", "", "application/x-www-form-urlencoded", []byte(form.Encode())); st != 200 {
		t.Errorf("code after refusals: %d %s", st, b)
	}
}

func TestRefreshRotates(t *testing.T) {
	e := newEnv(t, Options{})
	_, refresh := e.token()
	// The subdomain lookup with the (still valid) refresh token.
	req, _ := http.NewRequest("GET", e.srv.URL+"/oauth2/account/current/subdomain", nil)
	req.Header.Set("X-Refresh-Token", refresh)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	jsonEqual(t, "subdomain", sb, fixture(t, "oauth_account_subdomain.json"))
	body := func(rt string) []byte {
		b, _ := json.Marshal(map[string]string{"client_id": fxClientID, "client_secret": fxClientSecret,
			"grant_type": "refresh_token", "refresh_token": rt, "redirect_uri": fxRedirect})
		return b
	}
	st, _, b := e.do("POST", "/oauth2/access_token", "", "application/json", body(refresh))
	if st != 200 {
		t.Fatalf("refresh: %d %s", st, b)
	}
	st, _, b = e.do("POST", "/oauth2/access_token", "", "application/json", body(refresh))
	if st != 400 {
		t.Fatalf("reused refresh token: %d", st)
	}
	jsonEqual(t, "reused refresh token", b, fixture(t, "oauth_token_error_invalid_grant.json"))
}

func TestAPIStatuses(t *testing.T) {
	e := newEnv(t, Options{})
	tok, _ := e.token()
	if st, _, _ := e.do("GET", "/api/v4/account", "nope", "", nil); st != 401 {
		t.Errorf("bad token: %d", st)
	}
	e.clk.Add(DefaultAccessTTL)
	st, h, b := e.do("GET", "/api/v4/account", tok, "", nil)
	if st != 401 || h.Get("Content-Type") != "application/problem+json" {
		t.Errorf("expired token: %d %s", st, b)
	}
	jsonEqual(t, "401", b, fixture(t, "error_401.json"))
	tok, _ = e.token()
	e.sim.SetUnpaid(fxAccount, true)
	_, _, b = e.do("GET", "/api/v4/account", tok, "", nil)
	jsonEqual(t, "402", b, fixture(t, "error_402.json"))
	e.sim.SetUnpaid(fxAccount, false)

	st, _, b = e.do("GET", "/api/v4/leads/999", tok, "", nil)
	if st != 204 || len(b) != 0 {
		t.Errorf("unknown lead: %d %q", st, b)
	}
	// Seven at once pass, the eighth in the same instant gets the raw 429.
	e.sim.ResetCounts()
	for i := 0; i < 7; i++ {
		if st, _, _ := e.do("GET", "/api/v4/account", tok, "", nil); st != 200 {
			t.Fatalf("request %d: %d", i, st)
		}
	}
	st, h, b = e.do("GET", "/api/v4/account", tok, "", nil)
	if st != 429 || len(b) != 0 || h.Get("Content-Type") != "text/html; charset=UTF-8" || h.Get("Server") != "nginx" {
		t.Errorf("8th request: %d %q %v", st, b, h)
	}
	e.clk.Add(time.Second/7 + time.Millisecond)
	if st, _, _ := e.do("GET", "/api/v4/account", tok, "", nil); st != 200 {
		t.Errorf("after 1/7 s: %d", st)
	}
	if c := e.sim.Counts(fxAccount); c.TooMany != 1 || c.Requests != 9 {
		t.Errorf("counts %+v", c)
	}
}

func TestComplexValidationChangesNothing(t *testing.T) {
	e := newEnv(t, Options{})
	tok, _ := e.token()
	body := `[{"name":"a","pipeline_id":7000001,"custom_fields_values":null,"_embedded":{"contacts":[{"first_name":"A","custom_fields_values":[{"field_id":1,"values":[{"value":"x"}]}]}]},"request_id":"conv-wa-77071234567"},
	 {"name":"b","responsible_user_id":"9000001","request_id":"conv-ig-1133627508796544"},
	 {"name":"ok"}]`
	st, _, b := e.do("POST", "/api/v4/leads/complex", tok, "application/json", []byte(body))
	if st != 400 {
		t.Fatalf("complex: %d %s", st, b)
	}
	want := fixture(t, "error_validation_400.json")
	var g, w map[string]any
	json.Unmarshal(b, &g)
	json.Unmarshal(want, &w)
	// The fixture's paths are relative to the contact model; ours carry
	// the embedding path before them.
	ge := g["validation-errors"].([]any)
	if len(ge) != 2 || ge[0].(map[string]any)["request_id"] != "conv-wa-77071234567" || ge[1].(map[string]any)["request_id"] != "conv-ig-1133627508796544" {
		t.Errorf("validation errors %v", ge)
	}
	if !strings.Contains(string(b), `"path":"_embedded.contacts.0.custom_fields_values.0.field_id"`) || !strings.Contains(string(b), `"code":"InvalidType","path":"responsible_user_id"`) {
		t.Errorf("paths: %s", b)
	}
	if len(e.sim.Leads(fxAccount)) != 0 || len(e.sim.Contacts(fxAccount)) != 0 {
		t.Error("a refused batch created something")
	}
	st, _, b = e.do("POST", "/api/v4/leads/complex", tok, "application/json", fixture(t, "leads_complex_request.json"))
	if st != 400 || !strings.Contains(string(b), "NotFound") {
		t.Errorf("complex with unknown contact 40100001: %d %s", st, b)
	}
	e.sim.PutContact(fxAccount, Contact{ID: 40100001, Name: "Мария"})
	st, _, b = e.do("POST", "/api/v4/leads/complex", tok, "application/json", fixture(t, "leads_complex_request.json"))
	if st != 200 {
		t.Fatalf("complex fixture: %d %s", st, b)
	}
	var res []map[string]any
	json.Unmarshal(b, &res)
	if len(res) != 2 || res[1]["contact_id"].(float64) != 40100001 || res[0]["merged"] != false {
		t.Errorf("complex answer %s", b)
	}
	leads := e.sim.Leads(fxAccount)
	if len(leads) != 2 || leads[0].StatusID != 61000002 || leads[0].ResponsibleUserID != 9000002 || leads[0].Tags[0] != "WhatsApp" {
		t.Errorf("leads %+v", leads)
	}
}

func TestNotesTypesAndLimit(t *testing.T) {
	e := newEnv(t, Options{NoteTextLimit: 10})
	tok, _ := e.token()
	lead := e.sim.PutLead(fxAccount, Lead{Name: "x", PipelineID: 7000001, StatusID: 61000002})
	body := func(items ...string) []byte { return []byte("[" + strings.Join(items, ",") + "]") }
	id := strconv.Itoa(lead)
	cases := []struct {
		item, code, path string
	}{
		{`{"entity_id":` + id + `,"note_type":"common","params":{"text":"12345678901"}}`, "InvalidLength", "params.text"},
		{`{"entity_id":` + id + `,"note_type":"service_message","params":{"text":"hi"}}`, "FieldMissing", "params.service"},
		{`{"entity_id":` + id + `,"note_type":"chat_bubble","params":{"text":"hi"}}`, "NotSupportedChoice", "note_type"},
		{`{"entity_id":1,"note_type":"common","params":{"text":"hi"}}`, "NotFound", "entity_id"},
		{`{"entity_id":"` + id + `","note_type":"common","params":{"text":"hi"}}`, "InvalidType", "entity_id"},
		{`{"entity_id":` + id + `,"note_type":"sms_in","params":{"text":"hi"}}`, "FieldMissing", "params.phone"},
	}
	for _, c := range cases {
		e.clk.Add(time.Second)
		st, _, b := e.do("POST", "/api/v4/leads/notes", tok, "application/json", body(c.item))
		if st != 400 || !strings.Contains(string(b), `"code":"`+c.code+`","path":"`+c.path+`"`) {
			t.Errorf("%s: %d %s", c.item, st, b)
		}
	}
	if n := e.sim.Notes(fxAccount); len(n) != 0 {
		t.Errorf("refused notes stored: %+v", n)
	}
	e.clk.Add(time.Second)
	st, _, b := e.do("POST", "/api/v4/leads/"+id+"/notes", tok, "application/json",
		body(`{"note_type":"extended_service_message","params":{"service":"WA","text":"0123456789"}}`))
	if st != 200 || len(e.sim.Notes(fxAccount)) != 1 {
		t.Errorf("note at the limit: %d %s", st, b)
	}
}

// PATCH /api/v4/tasks completes tasks as amoCRM does: an unknown id, a
// result without is_completed true, a result without its text or a
// non-boolean is_completed refuse the whole batch, which changes nothing.
func TestPatchTasks(t *testing.T) {
	e := newEnv(t, Options{})
	tok, _ := e.token()
	st, _, b := e.do("POST", "/api/v4/tasks", tok, "application/json", []byte(`[{"text":"Ответить клиенту","complete_till":1700000000}]`))
	if st != 200 {
		t.Fatalf("create: %d %s", st, b)
	}
	id := e.sim.Tasks(fxAccount)[0].ID
	ids := strconv.Itoa(id)
	bad := []struct{ body, path, code string }{
		{`[{"id":1,"is_completed":true,"result":{"text":"x"}}]`, "id", "NotFound"},
		{`[{"id":` + ids + `,"result":{"text":"x"}}]`, "result", "NotSupportedChoice"},
		{`[{"id":` + ids + `,"is_completed":true,"result":{}}]`, "result.text", "FieldMissing"},
		{`[{"id":` + ids + `,"is_completed":"yes"}]`, "is_completed", "InvalidType"},
		{`[{"id":` + ids + `,"is_completed":true,"result":{"text":"ok"}},{"id":1,"is_completed":true}]`, "id", "NotFound"},
	}
	for _, c := range bad {
		st, _, b := e.do("PATCH", "/api/v4/tasks", tok, "application/json", []byte(c.body))
		if st != 400 || !strings.Contains(string(b), `"path":"`+c.path+`"`) || !strings.Contains(string(b), c.code) {
			t.Errorf("%s: %d %s", c.body, st, b)
		}
	}
	if tk := e.sim.Tasks(fxAccount)[0]; tk.IsCompleted || tk.Completions != 0 {
		t.Fatalf("a refused batch changed the task: %+v", tk)
	}
	st, _, b = e.do("PATCH", "/api/v4/tasks", tok, "application/json", []byte(`[{"id":`+ids+`,"is_completed":true,"result":{"text":"Клиенту ответили"}}]`))
	if st != 200 || !strings.Contains(string(b), `"id":`+ids) {
		t.Fatalf("complete: %d %s", st, b)
	}
	if tk := e.sim.Tasks(fxAccount)[0]; !tk.IsCompleted || tk.Completions != 1 || tk.ResultText != "Клиенту ответили" {
		t.Fatalf("task %+v", tk)
	}
}
