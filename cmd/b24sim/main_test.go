package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/sandbox/b24sim/console"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestControlAPI(t *testing.T) {
	// The gateway stub keeps install and message events.
	var (
		mu    sync.Mutex
		forms []url.Values
	)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("gateway: %v", err)
		}
		mu.Lock()
		forms = append(forms, r.PostForm)
		mu.Unlock()
	}))
	defer gw.Close()
	received := func() []url.Values {
		mu.Lock()
		defer mu.Unlock()
		return append([]url.Values(nil), forms...)
	}

	cfg, err := parseFlags([]string{"-install-url", gw.URL + "/install", "-lines", "3:WhatsApp, 1:Website chat"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.clientID != "sandbox.client" || cfg.clientSecret != "sandbox-secret" || len(cfg.lines) != 2 || cfg.addr != ":9091" || cfg.baseURL != "http://127.0.0.1:9091" {
		t.Fatalf("defaults: %+v", cfg)
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	// Listen first: the base URL must be known before the simulator exists.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.baseURL = "http://" + ln.Addr().String()
	sim := newSim(cfg, logger)
	defer sim.Close()
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: newHandler(sim, cfg, logger)}}
	srv.Start()
	defer srv.Close()

	postJSON := func(path string, v any) (int, map[string]any) {
		raw, _ := json.Marshal(v)
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}

	// Install: the gateway gets tokens whose client_endpoint is this server.
	if status, res := postJSON("/sim/install", map[string]string{}); status != 200 || res["status"] != float64(200) {
		t.Fatalf("install: %d %v", status, res)
	}
	install := received()[0]
	access, refresh := install.Get("auth[access_token]"), install.Get("auth[refresh_token]")
	endpoint := install.Get("auth[client_endpoint]")
	if install.Get("event") != "ONAPPINSTALL" || endpoint != srv.URL+"/rest/" || access == "" {
		t.Fatalf("install event: %v", install)
	}

	rest := func(method string, params map[string]any) map[string]any {
		params["auth"] = access
		raw, _ := json.Marshal(params)
		resp, err := http.Post(endpoint+method, "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", method, resp.StatusCode, out)
		}
		return out
	}
	rest("event.bind", map[string]any{"event": "OnImConnectorMessageAdd", "handler": gw.URL + "/events"})
	rest("imconnector.register", map[string]any{"ID": "acme_whatsapp", "NAME": "Acme", "ICON": map[string]any{"DATA_IMAGE": "data:image/svg+xml,x"}, "PLACEMENT_HANDLER": gw.URL + "/settings"})
	rest("imconnector.activate", map[string]any{"CONNECTOR": "acme_whatsapp", "LINE": 3, "ACTIVE": 1})
	rest("imconnector.send.messages", map[string]any{"CONNECTOR": "acme_whatsapp", "LINE": 3, "MESSAGES": []any{map[string]any{
		"user": map[string]any{"id": "79161234567", "name": "Анна"}, "message": map[string]any{"id": "wamid.1", "text": "Привет"}, "chat": map[string]any{"id": "79161234567"},
	}}})

	// The OAuth server is on the same mux.
	q := url.Values{"grant_type": {"refresh_token"}, "client_id": {"sandbox.client"}, "client_secret": {"sandbox-secret"}, "refresh_token": {refresh}}
	resp, err := http.Get(srv.URL + "/oauth/token/?" + q.Encode())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("token refresh: %v %v", err, resp)
	}
	resp.Body.Close()

	status, res := postJSON("/sim/operator-reply", map[string]any{"line": 3, "chat": "79161234567", "text": "Здравствуйте!"})
	if status != 200 || res["delivered"] != true || res["message_id"] == "" {
		t.Fatalf("operator reply: %d %v", status, res)
	}
	ev := received()[1]
	if ev.Get("event") != "ONIMCONNECTORMESSAGEADD" || !strings.HasSuffix(ev.Get("data[MESSAGES][0][message][text]"), "Здравствуйте!") {
		t.Errorf("event: %v", ev)
	}
	if status, _ := postJSON("/sim/operator-reply", map[string]any{"line": "3", "chat": "nobody", "text": "x"}); status != 400 {
		t.Errorf("unknown chat: %d", status)
	}
	if status, _ := postJSON("/sim/operator-reply", map[string]any{"line": 3, "text": ""}); status != 400 {
		t.Errorf("empty reply: %d", status)
	}

	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	var lines []console.LineView
	raw := get("/sim/lines")
	if err := json.Unmarshal([]byte(raw), &lines); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[1].ID != 3 || len(lines[1].Messages) != 2 ||
		lines[1].Messages[0].Author != "Анна" || lines[1].Messages[1].Direction != "out" || len(lines[1].Dialogs) != 1 {
		t.Errorf("/sim/lines = %s", raw)
	}
	deliveries := get("/sim/deliveries")
	page := get("/sim/")
	if !strings.Contains(page, "Песочница Битрикс24") || !strings.Contains(page, "Bitrix24 sandbox") {
		t.Errorf("page is not bilingual")
	}
	// Tokens never leave through logs or the control API.
	for name, text := range map[string]string{"logs": logs.String(), "lines": raw, "deliveries": deliveries} {
		if strings.Contains(text, access) || strings.Contains(text, refresh) {
			t.Errorf("%s leak a token", name)
		}
	}
	if !strings.Contains(logs.String(), "method=imconnector.send.messages") {
		t.Errorf("REST calls are not logged:\n%s", logs.String())
	}
}

func TestParseLines(t *testing.T) {
	if _, err := parseLines("x:y"); err == nil {
		t.Error("bad id accepted")
	}
	ls, err := parseLines("7:Instagram")
	if err != nil || len(ls) != 1 || ls[0].ID != 7 || ls[0].Name != "Instagram" {
		t.Errorf("parseLines = %v, %v", ls, err)
	}
}

// The page's install hint names the gateway's real route, and its buttons
// open the app page and a card tab as a portal user's browser would.
func TestOpenAsPortalUser(t *testing.T) {
	cfg, err := parseFlags([]string{"-install-url", "http://127.0.0.1:8080/bitrix24/install"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.appURL != "http://127.0.0.1:8080/bitrix24/app" || len(cfg.pipelines) != 2 || len(cfg.lines) != 3 {
		t.Fatalf("defaults: app %s, pipelines %v, lines %v", cfg.appURL, cfg.pipelines, cfg.lines)
	}
	sim := newSim(cfg, slog.New(slog.DiscardHandler))
	defer sim.Close()
	srv := httptest.NewServer(newHandler(sim, cfg, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	page := get("/sim/")
	if strings.Contains(page, "/b24/install") || !strings.Contains(page, "/bitrix24/install") {
		t.Error("the install hint names a route the gateway does not have")
	}
	for _, want := range []string{`id="open-app"`, `id="open-tab"`, `value="http://127.0.0.1:8080/bitrix24/app"`, `value="CRM_DEAL_DETAIL_TAB"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	open := func(form url.Values) (int, string) {
		resp, err := http.PostForm(srv.URL+"/sim/open", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	st, body := open(url.Values{"placement": {"DEFAULT"}, "user": {"1"}, "lang": {"en"}, "handler": {"http://127.0.0.1:8080/bitrix24/app"}})
	for _, want := range []string{`<form method="post" action="http://127.0.0.1:8080/bitrix24/app?DOMAIN=example.bitrix24.ru&amp;PROTOCOL=1&amp;LANG=en&amp;APP_SID=`,
		`name="AUTH_ID" value="`, `name="member_id" value="` + cfg.memberID + `"`, `name="PLACEMENT" value="DEFAULT"`, `document.forms[0].submit()`} {
		if st != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("open the app page: %d, lacks %s\n%s", st, want, body)
		}
	}
	// A card tab goes to the handler the app bound; before the app binds
	// one, the person is told to install first.
	tab := url.Values{"placement": {"CRM_DEAL_DETAIL_TAB"}, "user": {"27"}, "id": {"8061"}}
	if st, body := open(tab); st != http.StatusConflict || !strings.Contains(body, "установите") {
		t.Fatalf("card tab before install: %d %s", st, body)
	}
	access, _ := sim.InstallTokens(cfg.memberID)
	resp, err := http.PostForm(srv.URL+"/rest/placement.bind.json", url.Values{"auth": {access}, "PLACEMENT": {"CRM_DEAL_DETAIL_TAB"}, "HANDLER": {"http://127.0.0.1:8080/bitrix24/tab"}, "TITLE": {"WhatsApp"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("placement.bind: %d", resp.StatusCode)
	}
	st, body = open(tab)
	if st != http.StatusOK || !strings.Contains(body, `action="http://127.0.0.1:8080/bitrix24/tab?DOMAIN=`) || !strings.Contains(body, `name="PLACEMENT_OPTIONS" value="{&#34;ID&#34;:&#34;8061&#34;}"`) {
		t.Fatalf("open the card tab: %d\n%s", st, body)
	}
}

// TestFormInstallURL: the page's install form starts filled in, so its
// first press works: -install-url, else the install handler next to
// -redirect-url, else the README's local gateway.
func TestFormInstallURL(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-install-url", "http://gw.local:8081/bitrix24/install"}, "http://gw.local:8081/bitrix24/install"},
		{[]string{"-redirect-url", "http://127.0.0.1:8082/bitrix24/oauth/callback?x=1"}, "http://127.0.0.1:8082/bitrix24/install"},
		{nil, "http://127.0.0.1:8080/bitrix24/install"},
	} {
		cfg, err := parseFlags(c.args)
		if err != nil {
			t.Fatal(err)
		}
		if got := formInstallURL(cfg); got != c.want {
			t.Errorf("%v: %q, want %q", c.args, got, c.want)
		}
	}
}
