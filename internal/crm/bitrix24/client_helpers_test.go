package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
)

const (
	testClientID     = "app.573ad8a0346747.09223434"
	testClientSecret = "s3cret-client-secret-value"
	testIntegration  = "int-1"
	testMemberID     = "3f9b2c7d1e4a5b6c8d9e0f1a2b3c4d5e"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// portalCall is one request the fake portal saw.
type portalCall struct {
	HTTPMethod string
	Method     string // REST method
	Token      string
	Query      url.Values
	Body       []byte
}

// fakePortal is a Bitrix24 portal's REST API. handle answers a call; nil
// answers {"result": true}.
type fakePortal struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []portalCall
	handle func(w http.ResponseWriter, c portalCall)
}

func newFakePortal(t testing.TB, handle func(w http.ResponseWriter, c portalCall)) *fakePortal {
	p := &fakePortal{t: t, handle: handle}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakePortal) endpoint() string { return p.srv.URL + "/rest/" }

func (p *fakePortal) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	// client_secret and refresh tokens belong to the auth server only.
	for _, s := range []string{testClientSecret, "client_secret", "refresh_token", "fresh-rt", "rt-0"} {
		if strings.Contains(r.URL.String(), s) || bytes.Contains(body, []byte(s)) {
			p.t.Errorf("portal request carries %q", s)
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		p.t.Errorf("Content-Type = %q", ct)
	}
	if a := r.Header.Get("Accept"); a != "application/json" {
		p.t.Errorf("Accept = %q", a)
	}
	c := portalCall{
		HTTPMethod: r.Method,
		Method:     strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/rest/"), ".json"),
		Token:      r.URL.Query().Get("auth"),
		Query:      r.URL.Query(),
		Body:       body,
	}
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
	if r.Method != http.MethodPost {
		p.t.Errorf("%s %s, want POST", r.Method, r.URL.Path)
	}
	if p.handle == nil {
		writeJSON(w, 200, `{"result": true}`)
		return
	}
	p.handle(w, c)
}

func (p *fakePortal) Calls() []portalCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]portalCall(nil), p.calls...)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// fakeOAuth is oauth.bitrix.info with rotating, single-use refresh tokens:
// a refresh token works once, so a second, unserialised refresh fails with
// invalid_grant as it would for real.
type fakeOAuth struct {
	t        testing.TB
	srv      *httptest.Server
	endpoint string // client_endpoint handed out

	mu      sync.Mutex
	access  string // the access token the portal accepts
	refresh string // the refresh token that works next
	n       int

	refreshes atomic.Int32
	// override, when set, answers instead of the default behaviour.
	override func(w http.ResponseWriter, q url.Values)
}

func newFakeOAuth(t testing.TB, endpoint, access, refresh string) *fakeOAuth {
	o := &fakeOAuth{t: t, endpoint: endpoint, access: access, refresh: refresh}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *fakeOAuth) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/oauth/token/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		o.t.Errorf("token request %s, want GET", r.Method)
	}
	q := r.URL.Query()
	if q.Get("client_id") != testClientID || q.Get("client_secret") != testClientSecret {
		o.t.Errorf("token request without the app's credentials: %v", q)
	}
	if q.Get("grant_type") == "refresh_token" {
		o.refreshes.Add(1)
	}
	if o.override != nil {
		o.override(w, q)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if q.Get("grant_type") != "refresh_token" || q.Get("refresh_token") != o.refresh {
		writeJSON(w, 400, string(fixture(o.t, "oauth-token-error-invalid-grant.json")))
		return
	}
	o.n++
	o.access = fmt.Sprintf("fresh-access-%d", o.n)
	o.refresh = fmt.Sprintf("fresh-rt-%d", o.n)
	body, _ := json.Marshal(map[string]any{
		"access_token": o.access, "refresh_token": o.refresh, "expires_in": 3600,
		"expires": time.Now().Add(time.Hour).Unix(), "client_endpoint": o.endpoint, "member_id": testMemberID,
		"domain": "oauth.bitrix.info", "server_endpoint": "https://oauth.bitrix.info/rest/",
		"scope": "crm,imconnector", "status": "L", "user_id": 1,
	})
	writeJSON(w, 200, string(body))
}

func (o *fakeOAuth) validAccess() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.access
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv wires a client to a fake portal and auth server.
type testEnv struct {
	portal *fakePortal
	oauth  *fakeOAuth
	store  *MemoryTokenStore
	client *Client
	logs   *syncBuffer
	moved  chan string
}

// newTestEnv stores accessToken/refreshToken for testIntegration; the
// portal accepts only the auth server's current access token (which
// starts as validAccess), answering 401 expired_token otherwise.
func newTestEnv(t *testing.T, accessToken, refreshToken, validAccess string, handle func(w http.ResponseWriter, c portalCall)) *testEnv {
	t.Helper()
	env := &testEnv{store: NewMemoryTokenStore(), logs: &syncBuffer{}, moved: make(chan string, 10)}
	env.portal = newFakePortal(t, func(w http.ResponseWriter, c portalCall) {
		if c.Token != env.oauth.validAccess() {
			writeJSON(w, 401, string(fixture(t, "error-expired-token.json")))
			return
		}
		if handle == nil {
			writeJSON(w, 200, `{"result": {"ok": true}}`)
			return
		}
		handle(w, c)
	})
	env.oauth = newFakeOAuth(t, env.portal.endpoint(), validAccess, refreshToken)
	env.store.Put(Credentials{IntegrationID: testIntegration, MemberID: testMemberID, ClientEndpoint: env.portal.endpoint(),
		AccessToken: accessToken, RefreshToken: refreshToken, Expiry: time.Now().Add(time.Hour)})
	env.client = NewClient(ClientOptions{
		OAuth:         OAuthConfig{ClientID: testClientID, ClientSecret: testClientSecret, AuthServerURL: env.oauth.srv.URL},
		HTTP:          &http.Client{Timeout: 10 * time.Second},
		Tokens:        env.store,
		Limiter:       crm.NewLimiter(crm.LimiterOptions{Rate: 1000, Burst: 1000}),
		AllowInsecure: true,
		Logger:        slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEndpointMoved: func(id, ep string) {
			env.moved <- id + " " + ep
		},
	})
	t.Cleanup(func() { env.assertNoSecretsLogged(t) })
	return env
}

// assertNoSecretsLogged checks the logs for anything token-like.
func (env *testEnv) assertNoSecretsLogged(t *testing.T) {
	t.Helper()
	logs := env.logs.String()
	for _, s := range []string{testClientSecret, "fresh-access", "fresh-rt", "stale-access", "valid-access", "rt-0", "auth="} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}

func (env *testEnv) call(ctx context.Context, method string) error {
	var out json.RawMessage
	return env.client.Call(ctx, testIntegration, method, map[string]any{"x": 1}, &out)
}
