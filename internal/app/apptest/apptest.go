// Package apptest starts a whole gateway and a Meta simulator on loopback
// for end-to-end tests, on SQLite or PostgreSQL.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/app/demo"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

const (
	AppSecret   = "test_app_secret"
	VerifyToken = "verify-me"
	AdminToken  = "admin-test-token"
	// The business number and Instagram account of the shared fixtures.
	PhoneNumberID = "109283746501928"
	WabaID        = "104857392017465"
	IGUserID      = "17841405822304914"
	WAToken       = "EAAG-wa-token"
	IGToken       = "IGAA-ig-token"
	// The Bitrix24 application and portal of the tests.
	B24ClientID = "app.sandbox.1"
	B24Secret   = "b24-client-secret"
	B24MemberID = "a223c6b3710f85df22e9377d6c4f7553"
	B24AppToken = "51856fefc120afa4b628cc82d3935cce"
	B24Domain   = "example.bitrix24.ru"
	// The amoCRM integration of the tests (the fixtures' client id).
	AmoClientID = "6a2d4741-1b2c-4d3e-8f90-92277723dcea"
	AmoSecret   = "amo-client-secret-for-tests-0123456789abcdef0123456789abcdef01"
)

// Env is a running gateway with its simulator.
type Env struct {
	T      testing.TB
	App    *app.App
	Sim    *metasim.Server
	SimURL string
	// B24 and Portal are set with Options.Bitrix24.
	B24    *b24sim.Server
	B24URL string
	Portal *b24sim.Portal
	// Amo is the amoCRM simulator, AmoURL its base and AmoHost the
	// referer it gives (set with Options.AmoCRM). It starts with no
	// account: add them with Amo.AddAccount.
	Amo     *amosim.Server
	AmoURL  string
	AmoHost string
	URL     string // the gateway
	Client  *http.Client
	logs    *lockedBuffer
	cleanup []func()
}

// Options tune an Env.
type Options struct {
	Postgres bool
	// Sim changes the simulator's options before it starts.
	Sim func(*metasim.Options)
	// Config changes the gateway's configuration before it starts.
	Config func(*config.Config)
	// NoStart leaves the queue workers stopped.
	NoStart bool
	// Bitrix24 starts a portal simulator (OAuth server and REST).
	Bitrix24 bool
	// B24 changes the portal simulator's options before it starts.
	B24 func(*b24sim.Options)
	// AmoCRM starts an amoCRM simulator and configures the integration
	// with it as the allowed test base.
	AmoCRM bool
	// Amo changes the amoCRM simulator's options before it starts.
	Amo func(*amosim.Options)
	// DataDir and DatabaseURL reuse an earlier Env's storage (restarts).
	DataDir     string
	DatabaseURL string
}

// Start builds the simulator and the gateway and registers cleanup.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	gw := httptest.NewUnstartedServer(nil)
	gwURL := "http://" + gw.Listener.Addr().String()

	simOpts := metasim.Options{AppSecret: AppSecret, WebhookURL: gwURL + "/webhooks/meta",
		AutoStatuses: true, StatusDelay: 10 * time.Millisecond, ThroughputPerSecond: -1}
	if o.Sim != nil {
		o.Sim(&simOpts)
	}
	sim := metasim.New(simOpts)
	simSrv := httptest.NewServer(sim)
	sim.AddWhatsAppNumber(PhoneNumberID, WabaID, "77012345678", WAToken)
	sim.AddInstagramAccount(IGUserID, IGToken)

	var b24 *b24sim.Server
	var b24Srv *httptest.Server
	if o.Bitrix24 {
		bo := b24sim.Options{ClientID: B24ClientID, ClientSecret: B24Secret, RedirectURL: gwURL + "/bitrix24/oauth/callback"}
		if o.B24 != nil {
			o.B24(&bo)
		}
		b24 = b24sim.New(bo)
		b24Srv = httptest.NewServer(b24)
		b24.SetBaseURL(b24Srv.URL)
	}
	var amo *amosim.Server
	var amoSrv *httptest.Server
	if o.AmoCRM {
		ao := amosim.Options{ClientID: AmoClientID, ClientSecret: AmoSecret, RedirectURI: gwURL + "/amocrm/oauth/callback", Rate: -1,
			DPWebhookURL: gwURL + "/amocrm/dp", DPSettings: widgetDPSettings(t)}
		if o.Amo != nil {
			o.Amo(&ao)
		}
		if ao.ChannelID != "" && ao.HookURL == "" {
			ao.HookURL = gwURL + "/amocrm/amojo/:scope_id"
		}
		amo = amosim.New(ao)
		amoSrv = httptest.NewServer(amo)
		amo.SetReferer(strings.TrimPrefix(amoSrv.URL, "http://"))
	}
	keys := demo.Keys{AdminToken: AdminToken, SecretKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		AppSecret: AppSecret, VerifyToken: VerifyToken, B24ClientID: B24ClientID, B24Secret: B24Secret}
	urls := demo.URLs{Gateway: gwURL, Graph: simSrv.URL}
	if b24Srv != nil {
		urls.B24 = b24Srv.URL
	}
	if amoSrv != nil {
		urls.Amo = amoSrv.URL
		keys.AmoClientID, keys.AmoSecret = AmoClientID, AmoSecret
		ch := amo.Options()
		keys.AmoChannelID, keys.AmoChannelSecret, keys.AmoChannelCode = ch.ChannelID, ch.ChannelSecret, ch.ChannelCode
	}
	env := demo.GatewayEnv(keys, urls)
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = o.DataDir
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.DatabaseURL = o.DatabaseURL
	if o.Postgres && cfg.DatabaseURL == "" {
		cfg.DatabaseURL = storetest.URL(t)
	}
	cfg.LogLevel = "warn"
	if o.Config != nil {
		o.Config(cfg)
	}
	// Every log line is kept (at debug level) so that cleanup can prove no
	// secret was ever logged.
	logs := &lockedBuffer{}
	var sink io.Writer = logs
	if os.Getenv("TEST_LOG") != "" {
		sink = io.MultiWriter(logs, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = a.Handler()
	gw.Start()
	e := &Env{T: t, App: a, Sim: sim, SimURL: simSrv.URL, URL: gwURL, Client: &http.Client{Timeout: 30 * time.Second}, logs: logs}
	if b24 != nil {
		e.B24, e.B24URL = b24, b24Srv.URL
		e.Portal = b24.AddPortal(b24sim.PortalOptions{MemberID: B24MemberID, Domain: B24Domain, ApplicationToken: B24AppToken,
			Lines: []b24sim.OpenLine{{ID: 1, Name: "WhatsApp"}, {ID: 2, Name: "Instagram"}}})
	}
	if amo != nil {
		e.Amo, e.AmoURL, e.AmoHost = amo, amoSrv.URL, strings.TrimPrefix(amoSrv.URL, "http://")
	}
	if !o.NoStart {
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		a.CloseStreams()
		gw.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Close(ctx)
		sim.Close()
		simSrv.Close()
		if b24 != nil {
			b24.Close()
			b24Srv.Close()
		}
		if amo != nil {
			amo.Close()
			amoSrv.Close()
		}
		out := logs.String()
		for _, secret := range []string{WAToken, IGToken, AdminToken, AppSecret, "EAAG-new", cfg.SecretKey, B24Secret, B24AppToken, AmoSecret, cfg.AmoCRMChannelSecret} {
			if secret != "" && strings.Contains(out, secret) {
				t.Errorf("a secret (%.6s…) appeared in the gateway's logs", secret)
			}
		}
	})
	return e
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logs is everything the gateway logged so far.
func (e *Env) Logs() string { return e.logs.String() }

// Do calls the gateway with the admin token unless token is given.
func (e *Env) Do(method, path string, body any, token ...string) (int, map[string]any) {
	e.T.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.URL+path, r)
	tok := AdminToken
	if len(token) > 0 {
		tok = token[0]
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	json.Unmarshal(raw, &out)
	if len(out) == 0 && len(raw) > 0 {
		out["_raw"] = string(raw)
	}
	return resp.StatusCode, out
}

// PostWebhook posts body to /webhooks/meta signed with the app secret.
func (e *Env) PostWebhook(body []byte) (int, map[string]any) {
	e.T.Helper()
	return e.PostWebhookSigned(body, metasim.SignBody(AppSecret, body))
}

// PostWebhookSigned posts with the given signature header ("" for none).
func (e *Env) PostWebhookSigned(body []byte, sig string) (int, map[string]any) {
	e.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/webhooks/meta", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		e.T.Fatalf("post webhook: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// CreateWhatsApp creates the fixtures' WhatsApp channel and returns its id.
func (e *Env) CreateWhatsApp(token ...string) string {
	e.T.Helper()
	st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Продажи WA",
		"phone_number_id": PhoneNumberID, "waba_id": WabaID, "display_phone": "+7 701 234 56 78", "access_token": WAToken}, token...)
	if st != http.StatusCreated {
		e.T.Fatalf("create whatsapp channel: %d %v", st, body)
	}
	return body["id"].(string)
}

// CreateInstagram creates the fixtures' Instagram channel.
func (e *Env) CreateInstagram(token ...string) string {
	e.T.Helper()
	st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "Instagram",
		"ig_user_id": IGUserID, "page_id": "1122334455", "access_token": IGToken}, token...)
	if st != http.StatusCreated {
		e.T.Fatalf("create instagram channel: %d %v", st, body)
	}
	return body["id"].(string)
}

// Messages lists a channel's messages, newest first.
func (e *Env) Messages(channelID string) []map[string]any {
	e.T.Helper()
	st, body := e.Do("GET", "/api/v1/channels/"+channelID+"/messages?limit=500", nil)
	if st != http.StatusOK {
		e.T.Fatalf("list messages: %d %v", st, body)
	}
	var out []map[string]any
	for _, m := range body["data"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

// Eventually polls cond until it holds or 60 seconds pass. The bound
// guards against hangs; it measures nothing, and a loaded 2-core machine
// running the suite under -race has needed more than 20 s.
func (e *Env) Eventually(what string, cond func() bool) {
	e.T.Helper()
	e.EventuallyWithin(60*time.Second, what, cond)
}

// EventuallyWithin polls cond until it holds or d passes.
func (e *Env) EventuallyWithin(d time.Duration, what string, cond func() bool) {
	e.T.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.T.Fatalf("timed out waiting for: %s", what)
}

// Each runs f on SQLite and, when TEST_DATABASE_URL is set, PostgreSQL.
func Each(t *testing.T, o Options, f func(t *testing.T, e *Env)) {
	t.Run("sqlite", func(t *testing.T) { f(t, Start(t, o)) })
	if os.Getenv(storetest.EnvURL) == "" {
		return
	}
	t.Run("postgres", func(t *testing.T) {
		po := o
		po.Postgres = true
		f(t, Start(t, po))
	})
}

// Sign returns the X-Hub-Signature-256 value for body.
func Sign(body []byte) string { return metasim.SignBody(AppSecret, body) }

// InstallBitrix24 installs the app on the simulated portal through the
// ONAPPINSTALL event and waits for the setup to reach the portal. It
// returns the integration and its workspace.
func (e *Env) InstallBitrix24() (integrationID, workspaceID string) {
	e.T.Helper()
	st, err := e.B24.PostInstallEvent(e.T.Context(), B24MemberID, e.URL+"/bitrix24/install", "ru")
	if err != nil || st != http.StatusOK {
		e.T.Fatalf("install: %d %v", st, err)
	}
	_, list := e.Do("GET", "/api/v1/integrations", nil)
	for _, v := range list["data"].([]any) {
		m := v.(map[string]any)
		if m["type"] == "bitrix24" {
			integrationID, workspaceID = m["id"].(string), m["workspace_id"].(string)
		}
	}
	if integrationID == "" {
		e.T.Fatalf("no integration after install: %v", list)
	}
	e.Eventually("connectors registered and events bound", func() bool {
		return len(e.Portal.Connectors()) >= 2 && len(e.Portal.Events()) >= 6
	})
	return integrationID, workspaceID
}

// WaitIdle waits until no job is running or due: work already handed to
// the queue is done.
func (e *Env) WaitIdle() {
	e.T.Helper()
	e.Eventually("queue idle", func() bool {
		n, err := e.App.Queue.Busy(context.Background())
		return err == nil && n == 0
	})
}

// InstallBitrix24Portal adds another portal to the simulator and installs
// the app there, for tests with several CRMs; run the gateway with
// Bitrix24Workspace "default" to have it in the first portal's workspace.
// It returns the portal and its integration's id.
func (e *Env) InstallBitrix24Portal(memberID, domain, appToken string) (*b24sim.Portal, string) {
	e.T.Helper()
	p := e.B24.AddPortal(b24sim.PortalOptions{MemberID: memberID, Domain: domain, ApplicationToken: appToken,
		Lines: []b24sim.OpenLine{{ID: 1, Name: "WhatsApp"}}})
	st, err := e.B24.PostInstallEvent(e.T.Context(), memberID, e.URL+"/bitrix24/install", "ru")
	if err != nil || st != http.StatusOK {
		e.T.Fatalf("install %s: %d %v", domain, st, err)
	}
	in, err := e.App.Store.IntegrationByExternal(e.T.Context(), "bitrix24", strings.ToLower(memberID))
	if err != nil {
		e.T.Fatalf("no integration after installing %s: %v", domain, err)
	}
	e.Eventually("connectors registered and events bound on "+domain, func() bool {
		return len(p.Connectors()) >= 1 && len(p.Events()) >= 6
	})
	return p, in.ID
}

// widgetDPSettings are the widget manifest's digital pipeline settings.
func widgetDPSettings(t testing.TB) map[string]bool {
	t.Helper()
	out, err := demo.WidgetDPSettings()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
