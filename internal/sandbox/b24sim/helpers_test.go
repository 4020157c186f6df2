package b24sim

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
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixture values (shared/fixtures/bitrix24/README.md) so payloads compare 1:1.
const (
	testClientID  = "app.573ad8a0346747.09223434"
	testSecret    = "s3cret"
	testMemberID  = "3f9b2c7d1e4a5b6c8d9e0f1a2b3c4d5e"
	testDomain    = "example.bitrix24.ru"
	testAppToken  = "8c41d2f07e9a3b5c6d1e2f3a4b5c6d7e"
	testConnector = "acme_whatsapp"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 12, 30, 11, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type simEnv struct {
	sim     *Server
	srv     *httptest.Server
	clock   *fakeClock
	portal  *Portal
	access  string
	refresh string
}

// newSim starts a simulator with the fixture portal (line 3 "WhatsApp" and
// line 1 "Website chat") and install tokens.
func newSim(t *testing.T, opts Options, po PortalOptions) *simEnv {
	t.Helper()
	env := &simEnv{clock: newFakeClock()}
	opts.ClientID, opts.ClientSecret = testClientID, testSecret
	if opts.Clock == nil {
		opts.Clock = env.clock.Now
	}
	env.sim = New(opts)
	env.srv = httptest.NewServer(env.sim)
	env.sim.SetBaseURL(env.srv.URL)
	if po.MemberID == "" {
		po.MemberID = testMemberID
	}
	if po.Domain == "" {
		po.Domain = testDomain
	}
	if po.ApplicationToken == "" {
		po.ApplicationToken = testAppToken
	}
	if po.Lines == nil {
		po.Lines = []OpenLine{{ID: 3, Name: "WhatsApp"}, {ID: 1, Name: "Website chat"}}
	}
	env.portal = env.sim.AddPortal(po)
	env.access, env.refresh = env.sim.InstallTokens(po.MemberID)
	t.Cleanup(func() {
		env.srv.Close()
		env.sim.Close()
	})
	return env
}

type response struct {
	status int
	raw    []byte
	body   map[string]any
}

func (r response) errCode() string { s, _ := r.body["error"].(string); return s }

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("bad JSON %v: %s", err, raw)
		}
	}
	return r
}

// rest calls a method with a JSON body carrying auth.
func (e *simEnv) rest(t *testing.T, token, method string, params map[string]any) response {
	t.Helper()
	body := map[string]any{}
	for k, v := range params {
		body[k] = v
	}
	if token != "" {
		body["auth"] = token
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/rest/"+method+".json", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// fixtureToken is the access token used in the request fixtures.
const fixtureToken = "e5a1b06700738a2b0062d5a900000001f0f107a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"

// restRaw posts a raw JSON body (a fixture) with its auth token replaced
// textually, so that key order (which batch depends on) is kept.
func (e *simEnv) restRaw(t *testing.T, method string, fixtureBody []byte) response {
	t.Helper()
	if !bytes.Contains(fixtureBody, []byte(fixtureToken)) {
		t.Fatalf("fixture has no auth token")
	}
	raw := bytes.ReplaceAll(fixtureBody, []byte(fixtureToken), []byte(e.access))
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/rest/"+method, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// restForm posts an urlencoded body.
func (e *simEnv) restForm(t *testing.T, method, body string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/rest/"+method, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func (e *simEnv) ok(t *testing.T, method string, params map[string]any) response {
	t.Helper()
	r := e.rest(t, e.access, method, params)
	if r.status != http.StatusOK {
		t.Fatalf("%s: HTTP %d %s", method, r.status, r.raw)
	}
	return r
}

func (e *simEnv) token(t *testing.T, method string, q url.Values) response {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+"/oauth/token/?"+q.Encode(), nil)
	return do(t, req)
}

// fixtureDir finds shared/fixtures/bitrix24 next to the repository or in it.
func fixtureDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		for _, c := range []string{"shared/fixtures/bitrix24", "../shared/fixtures/bitrix24"} {
			p := filepath.Join(dir, c)
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return p
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared/fixtures/bitrix24 not found")
		}
		dir = parent
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

func mustJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// assertSameShape checks that got has exactly the keys of the fixture, with
// the same JSON kinds, recursively (arrays compare their first element).
func assertSameShape(t *testing.T, got []byte, fixtureName string, ignore ...string) {
	t.Helper()
	want := mustJSON(t, fixture(t, fixtureName))
	var diffs []string
	for _, d := range shapeDiff("$", mustJSON(t, got), want) {
		if !slices.ContainsFunc(ignore, func(p string) bool { return strings.HasPrefix(d, p) }) {
			diffs = append(diffs, d)
		}
	}
	if len(diffs) > 0 {
		t.Errorf("shape differs from %s:\n%s\ngot: %s", fixtureName, strings.Join(diffs, "\n"), got)
	}
}

// assertSameJSON checks that got equals the fixture value for value.
func assertSameJSON(t *testing.T, got []byte, fixtureName string) {
	t.Helper()
	want := mustJSON(t, fixture(t, fixtureName))
	if g := mustJSON(t, got); !reflect.DeepEqual(g, want) {
		t.Errorf("body differs from %s:\ngot:  %s\nwant: %s", fixtureName, got, fixture(t, fixtureName))
	}
}

func shapeDiff(path string, got, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path + ": want object"}
		}
		var d []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				d = append(d, path+"."+k+": missing")
				continue
			}
			d = append(d, shapeDiff(path+"."+k, gv, wv)...)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				d = append(d, path+"."+k+": unexpected")
			}
		}
		return d
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{path + ": want array"}
		}
		if len(w) > 0 && len(g) > 0 {
			return shapeDiff(path+"[0]", g[0], w[0])
		}
		return nil
	case string:
		if _, ok := got.(string); !ok {
			return []string{path + ": want string"}
		}
	case float64:
		if _, ok := got.(float64); !ok {
			return []string{path + ": want number"}
		}
	case bool:
		if _, ok := got.(bool); !ok {
			return []string{path + ": want bool"}
		}
	case nil:
		// null in a fixture: any kind is acceptable
	}
	return nil
}

// formKeys returns the sorted keys of a form-encoded body, failing unless
// brackets are percent-encoded as Bitrix24 sends them.
func formKeys(t *testing.T, body string) []string {
	t.Helper()
	if strings.ContainsAny(body, "[]") {
		t.Errorf("brackets not percent-encoded: %s", body)
	}
	v, err := url.ParseQuery(strings.TrimSpace(body))
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dig walks a decoded JSON value by keys and indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// setupConnector registers the fixture connector and activates it on line 3.
func (e *simEnv) setupConnector(t *testing.T) {
	t.Helper()
	if r := e.restRaw(t, "imconnector.register", fixture(t, "imconnector-register-request.json")); r.status != 200 || dig(r.body, "result", "result") != true {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	e.ok(t, "imconnector.activate", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "ACTIVE": 1})
	e.ok(t, "imconnector.connector.data.set", map[string]any{"CONNECTOR": testConnector, "LINE": 3, "DATA": map[string]any{"ID": "109283746501928", "NAME": "Acme WhatsApp"}})
}

// handlerStub records event POSTs.
type handlerStub struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	status int
}

func newHandlerStub(t *testing.T) *handlerStub {
	t.Helper()
	h := &handlerStub{status: http.StatusOK}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("event Content-Type %q", ct)
		}
		if r.Method != http.MethodPost {
			t.Errorf("event method %s", r.Method)
		}
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		st := h.status
		h.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *handlerStub) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies)
}

func (h *handlerStub) setStatus(s int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = s
}
