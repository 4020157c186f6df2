package metasim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fixture ids (shared/fixtures/meta/README.md) so payloads compare 1:1.
const (
	testSecret   = "test_app_secret"
	testPhoneID  = "109283746501928"
	testWABA     = "104857392017465"
	testDisplay  = "+7 701 234 56 78"
	testWAToken  = "wa-token"
	testIGUser   = "17841405822304914"
	testIGToken  = "ig-token"
	testCustomer = "79161234567"
	testIGSID    = "1133627508796544"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)}
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

// gatewayStub is the webhook receiver side: it checks every signature the
// way a real gateway must and keeps the raw bodies.
type gatewayStub struct {
	*httptest.Server
	t      *testing.T
	status atomic.Int32

	mu     sync.Mutex
	bodies [][]byte
}

func newGatewayStub(t *testing.T) *gatewayStub {
	t.Helper()
	g := &gatewayStub{t: t}
	g.status.Store(http.StatusOK)
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("gateway stub: read body: %v", err)
		}
		if got, want := r.Header.Get(SignatureHeader), SignBody(testSecret, body); got != want {
			t.Errorf("gateway stub: signature %q, want %q", got, want)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("gateway stub: Content-Type %q", ct)
		}
		if r.Method != http.MethodPost {
			t.Errorf("gateway stub: method %s", r.Method)
		}
		g.mu.Lock()
		g.bodies = append(g.bodies, body)
		g.mu.Unlock()
		w.WriteHeader(int(g.status.Load()))
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gatewayStub) received() [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]byte(nil), g.bodies...)
}

func (g *gatewayStub) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bodies = nil
}

type simEnv struct {
	sim   *Server
	srv   *httptest.Server
	clock *fakeClock
	gw    *gatewayStub
}

// newSim starts a simulator with one WhatsApp number and one Instagram
// account. Rate limits stay at their defaults unless opts says otherwise.
func newSim(t *testing.T, opts Options) *simEnv {
	t.Helper()
	env := &simEnv{clock: newFakeClock(), gw: newGatewayStub(t)}
	opts.AppSecret = testSecret
	opts.WebhookURL = env.gw.URL
	opts.Clock = env.clock.Now
	env.sim = New(opts)
	env.sim.AddWhatsAppNumber(testPhoneID, testWABA, testDisplay, testWAToken)
	env.sim.AddInstagramAccount(testIGUser, testIGToken)
	env.srv = httptest.NewServer(env.sim)
	t.Cleanup(func() {
		env.srv.Close()
		env.sim.Close()
	})
	return env
}

// call performs a Graph request and returns status and body.
func (e *simEnv) call(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func (e *simEnv) sendWA(t *testing.T, body any) (int, []byte) {
	t.Helper()
	return e.call(t, http.MethodPost, "/v25.0/"+testPhoneID+"/messages", testWAToken, body)
}

func textTo(to, body string) map[string]any {
	return map[string]any{
		"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
		"type": "text", "text": map[string]any{"body": body},
	}
}

func templateTo(to string) map[string]any {
	return map[string]any{
		"messaging_product": "whatsapp", "to": to, "type": "template",
		"template": map[string]any{"name": "order_update", "language": map[string]any{"code": "ru"},
			"components": []any{map[string]any{"type": "body", "parameters": []any{
				map[string]any{"type": "text", "text": "Анна"}, map[string]any{"type": "text", "text": "A-1024"}}}}},
	}
}

type apiError struct {
	Error struct {
		Message   string `json:"message"`
		Type      string `json:"type"`
		Code      int    `json:"code"`
		Subcode   int    `json:"error_subcode"`
		ErrorData *struct {
			MessagingProduct string `json:"messaging_product"`
			Details          string `json:"details"`
		} `json:"error_data"`
		FBTraceID string `json:"fbtrace_id"`
	} `json:"error"`
}

func decodeError(t *testing.T, body []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if e.Error.Code == 0 || e.Error.Message == "" || e.Error.Type == "" || e.Error.FBTraceID == "" {
		t.Fatalf("error body incomplete: %s", body)
	}
	return e
}

func mustJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// fixtureDir finds shared/fixtures/meta next to the repository (CI clones
// main with shared/ beside it) or inside it.
func fixtureDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		for _, c := range []string{"shared/fixtures/meta", "../shared/fixtures/meta"} {
			p := filepath.Join(dir, c)
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return p
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared/fixtures/meta not found")
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

// assertSameShape checks that got has exactly the keys of the fixture, with
// the same JSON kinds, recursively (arrays compare their first element).
func assertSameShape(t *testing.T, got []byte, fixtureName string) {
	t.Helper()
	want := mustJSON(t, fixture(t, fixtureName))
	if diffs := shapeDiff("$", mustJSON(t, got), want); len(diffs) > 0 {
		t.Errorf("shape differs from %s:\n%v\ngot: %s", fixtureName, diffs, got)
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
	}
	return nil
}

// waHook is the subset of a WhatsApp delivery the tests look at.
type waHook struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				Metadata struct {
					DisplayPhoneNumber string `json:"display_phone_number"`
					PhoneNumberID      string `json:"phone_number_id"`
				} `json:"metadata"`
				Contacts []struct {
					WaID string `json:"wa_id"`
				} `json:"contacts"`
				Messages []struct {
					From    string `json:"from"`
					ID      string `json:"id"`
					Type    string `json:"type"`
					Context *struct {
						From string `json:"from"`
						ID   string `json:"id"`
					} `json:"context"`
					Text *struct {
						Body string `json:"body"`
					} `json:"text"`
					Image *struct {
						ID     string `json:"id"`
						SHA256 string `json:"sha256"`
					} `json:"image"`
				} `json:"messages"`
				Statuses []struct {
					ID          string `json:"id"`
					Status      string `json:"status"`
					RecipientID string `json:"recipient_id"`
					BizOpaque   string `json:"biz_opaque_callback_data"`
					Errors      []struct {
						Code int `json:"code"`
					} `json:"errors"`
				} `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

func decodeWAHook(t *testing.T, b []byte) waHook {
	t.Helper()
	var h waHook
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("webhook is not JSON: %v: %s", err, b)
	}
	if h.Object != "whatsapp_business_account" || len(h.Entry) != 1 || len(h.Entry[0].Changes) != 1 {
		t.Fatalf("unexpected envelope: %s", b)
	}
	return h
}

// statusSeq flattens the statuses of the given deliveries, in order.
func statusSeq(t *testing.T, bodies [][]byte) []string {
	t.Helper()
	var seq []string
	for _, b := range bodies {
		h := decodeWAHook(t, b)
		for _, st := range h.Entry[0].Changes[0].Value.Statuses {
			seq = append(seq, st.Status)
		}
	}
	return seq
}
