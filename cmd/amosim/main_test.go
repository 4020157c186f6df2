package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/crm/amocrm"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// The standalone simulator installs into a gateway stub (code and referer
// exchangeable by the real client), shows the data on its page, and relays
// a manager's reply as a signed hook.
func TestStandalone(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var hookBody []byte
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r)
		if r.Method == http.MethodPost {
			hookBody = b
		}
		mu.Unlock()
	}))
	defer gw.Close()
	sim := httptest.NewUnstartedServer(nil)
	cfg, err := parseFlags([]string{"-base-url", "http://" + sim.Listener.Addr().String(), "-redirect-uri", gw.URL + "/amocrm/oauth/callback",
		"-disable-url", gw.URL + "/amocrm/disabled", "-hook-url", gw.URL + "/amocrm/amojo/:scope_id"})
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(cfg, slog.New(slog.DiscardHandler))
	defer s.Close()
	sim.Config.Handler = newHandler(s, cfg, slog.New(slog.DiscardHandler))
	sim.Start()
	defer sim.Close()

	resp, err := http.PostForm(sim.URL+"/sim/install", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	if len(got) != 1 || got[0].URL.Path != "/amocrm/oauth/callback" {
		t.Fatalf("install calls %v", got)
	}
	q := got[0].URL.Query()
	mu.Unlock()
	if q.Get("referer") != sim.Listener.Addr().String() || q.Get("from_widget") != "1" || q.Get("code") == "" {
		t.Fatalf("install query %v", q)
	}
	// The real client exchanges it and uses the account.
	c := amocrm.NewClient(amocrm.Options{OAuth: amocrm.OAuthConfig{ClientID: cfg.clientID, ClientSecret: cfg.clientSecret, RedirectURI: cfg.redirectURI},
		Hosts: amocrm.HostPolicy{BaseURL: sim.URL, AllowPrivate: true}})
	tok, err := c.Exchange(context.Background(), q.Get("referer"), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	toks := amocrm.NewMemoryTokens(c)
	toks.Put("i", q.Get("referer"), *tok)
	api := amocrm.NewClient(amocrm.Options{Tokens: toks, Hosts: amocrm.HostPolicy{BaseURL: sim.URL, AllowPrivate: true}}).For(amocrm.Account{ID: "i", Host: q.Get("referer")})
	acc, err := api.Account(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateLeadsComplex(context.Background(), []amocrm.LeadInput{{Name: "<script>x</script>", Embedded: &amocrm.LeadEmbed{
		Contacts: []amocrm.ContactInput{{Name: "Мария", CustomFields: []amocrm.FieldValues{amocrm.Phone("+79161234567", "MOB")}}}}}}); err != nil {
		t.Fatal(err)
	}
	aj := &amocrm.AmojoClient{ChannelID: cfg.channelID, Secret: cfg.channelSecret, BaseURL: sim.URL}
	conn, err := aj.Connect(context.Background(), acc.AmojoID, "WhatsApp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aj.SendMessage(context.Background(), conn.ScopeID, amocrm.AmojoMessage{Timestamp: time.Now().Unix(), MsgID: "m1",
		ConversationID: "wa-1", Sender: amocrm.AmojoSender{ID: "wa-1", Name: "Мария"}, Message: amocrm.AmojoContent{Type: "text", Text: "Привет"}}); err != nil {
		t.Fatal(err)
	}

	page := get(t, sim.URL+"/sim/")
	for _, want := range []string{"amoCRM sandbox", "Песочница amoCRM", "&lt;script&gt;x&lt;/script&gt;", "79161234567", "Привет", conn.ScopeID} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>x") {
		t.Error("lead name not escaped")
	}

	resp, err = http.PostForm(sim.URL+"/sim/manager-reply", url.Values{"conversation": {"wa-1"}, "user": {"9000002"}, "text": {"Здравствуйте"}})
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		MsgID      string `json:"msgid"`
		HookStatus int    `json:"hook_status"`
	}
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	mu.Lock()
	body := bytes.Clone(hookBody)
	hookReq := got[len(got)-1]
	mu.Unlock()
	if rep.HookStatus != 200 || hookReq.URL.Path != "/amocrm/amojo/"+conn.ScopeID {
		t.Fatalf("reply %+v to %s", rep, hookReq.URL.Path)
	}
	if h, err := amocrm.ParseAmojoHook(cfg.channelSecret, body, hookReq.Header.Get("X-Signature")); err != nil || h.Message.Message.ID != rep.MsgID {
		t.Errorf("hook %v %v", h, err)
	}

	resp, err = http.PostForm(sim.URL+"/sim/disable", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	dq := got[len(got)-1].URL.Query()
	mu.Unlock()
	if id, err := (amocrm.OAuthConfig{ClientID: cfg.clientID, ClientSecret: cfg.clientSecret}).VerifyDisableHook(dq); err != nil || id != acc.ID {
		t.Errorf("disable hook %v: %d %v", dq, id, err)
	}
	if _, err := api.Account(context.Background()); !amocrm.NeedsReauth(err) {
		t.Errorf("after disable: %v", err)
	}

	resp, err = http.PostForm(sim.URL+"/sim/widget-token", url.Values{"user": {"9000002"}})
	if err != nil {
		t.Fatal(err)
	}
	var wt struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&wt)
	resp.Body.Close()
	ru, _ := url.Parse(cfg.redirectURI)
	v := amocrm.WidgetVerifier{ClientID: cfg.clientID, ClientSecret: cfg.clientSecret, Audience: ru.Scheme + "://" + ru.Host,
		Hosts: amocrm.HostPolicy{}}
	if c, err := v.VerifyFor(wt.Token, acc.ID); err != nil || c.UserID != 9000002 || c.IsAdmin {
		t.Errorf("widget token: %+v %v", c, err)
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

// The page's digital pipeline forms: saving an action fetches the key
// from the gateway with an admin's disposable token; moving a lead into
// the stage posts the run, form-encoded, with the key among the settings.
func TestStandaloneDigitalPipeline(t *testing.T) {
	var mu sync.Mutex
	var run url.Values
	var keyToken string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/amocrm/widget/dp-key":
			keyToken = r.Header.Get("X-Auth-Token")
			w.Write([]byte(`{"key":"k-123"}`))
		case "/amocrm/dp":
			b, _ := io.ReadAll(r.Body)
			run, _ = url.ParseQuery(string(b))
		}
	}))
	defer gw.Close()
	sim := httptest.NewUnstartedServer(nil)
	cfg, err := parseFlags([]string{"-base-url", "http://" + sim.Listener.Addr().String(), "-redirect-uri", gw.URL + "/amocrm/oauth/callback",
		"-dp-url", gw.URL + "/amocrm/dp", "-gateway-url", gw.URL})
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(cfg, slog.New(slog.DiscardHandler))
	defer s.Close()
	sim.Config.Handler = newHandler(s, cfg, slog.New(slog.DiscardHandler))
	sim.Start()
	defer sim.Close()
	lead := s.PutLead(30123456, amosim.Lead{Name: "Тест", PipelineID: 7000001, StatusID: 61000002})

	post := func(path string, v url.Values) map[string]any {
		t.Helper()
		resp, err := http.PostForm(sim.URL+path, v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v %v", path, resp.StatusCode, out, err)
		}
		return out
	}
	post("/sim/dp-action", url.Values{"status": {"7000001:61000003"}, "text": {"Готово"}})
	if out := post("/sim/move-lead", url.Values{"lead": {strconv.Itoa(lead)}, "status": {"61000003"}}); out["dp_status"] != float64(200) {
		t.Fatalf("move: %v", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if keyToken == "" || run.Get("action[settings][widget][settings][key]") != "k-123" || run.Get("action[settings][widget][settings][text]") != "Готово" ||
		run.Get("event[data][id]") != strconv.Itoa(lead) || run.Get("event[data][status_id]") != "61000003" || run.Get("account_id") != "30123456" {
		t.Fatalf("key token %q, run %v", keyToken, run)
	}
}

// The widget's frames: the settings page and a card, each on the
// simulator's origin with a fresh disposable token of the chosen user for
// the gateway, the gateway in the CSP's connect-src and frame-src and no
// inline script; refusals name the problem in both languages and carry no
// token.
func TestStandaloneWidgetFrames(t *testing.T) {
	sim := httptest.NewUnstartedServer(nil)
	gw := "http://127.0.0.1:18080"
	cfg, err := parseFlags([]string{"-base-url", "http://" + sim.Listener.Addr().String(), "-redirect-uri", gw + "/amocrm/oauth/callback",
		"-gateway-url", gw + "/"})
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(cfg, slog.New(slog.DiscardHandler))
	defer s.Close()
	sim.Config.Handler = newHandler(s, cfg, slog.New(slog.DiscardHandler))
	sim.Start()
	defer sim.Close()
	acc := amosim.ExampleAccount().ID
	contact := s.PutContact(acc, amosim.Contact{Name: "Мария <b>", Phones: []amosim.Value{{Value: "+79161234567", EnumCode: "MOB"}}})
	lead := s.PutLead(acc, amosim.Lead{Name: "Заказ <i>", PipelineID: 7000001, StatusID: 61000002, ResponsibleUserID: 9000002, ContactIDs: []int{contact}})

	page := get(t, sim.URL+"/sim/")
	for _, want := range []string{gw, `action="/sim/widget/settings"`, `action="/sim/widget/card"`, `name="entity" value="leads"`,
		`name="entity" value="contacts"`, `name="id" value="` + strconv.Itoa(lead) + `"`, "Открыть окно в карточке", "Open the widget's settings"} {
		if !strings.Contains(page, want) {
			t.Errorf("/sim/ lacks %q", want)
		}
	}
	if form, _, _ := strings.Cut(page[strings.Index(page, `action="/sim/widget/settings"`):], "</form>"); !strings.Contains(form, `<option value="9000002"`) ||
		strings.Contains(form, `<option value="9000003"`) {
		t.Errorf("the settings form offers other users than the active ones: %s", form)
	}

	ru, _ := url.Parse(cfg.redirectURI)
	v := amocrm.WidgetVerifier{ClientID: cfg.clientID, ClientSecret: cfg.clientSecret, Audience: ru.Scheme + "://" + ru.Host}
	tokenRE := regexp.MustCompile(`data-token="([^"]+)"`)
	open := func(path string, q url.Values, want int) (string, http.Header) {
		t.Helper()
		resp, err := http.Get(sim.URL + path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("GET %s?%s: %d, want %d: %s", path, q.Encode(), resp.StatusCode, want, b)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline'; connect") || strings.Contains(string(b), "<script>") {
			t.Errorf("%s: inline script allowed or used: %s", path, csp)
		}
		return string(b), resp.Header
	}
	token := func(body string, user int, admin bool) string {
		t.Helper()
		m := tokenRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no token on the page: %s", body)
		}
		c, err := v.VerifyFor(m[1], acc)
		if err != nil || c.UserID != user || c.IsAdmin != admin {
			t.Fatalf("token: %+v %v", c, err)
		}
		return m[1]
	}

	body, h := open("/sim/widget/settings", url.Values{"user": {"9000002"}, "lang": {"en"}}, http.StatusOK)
	first := token(body, 9000002, false)
	for _, want := range []string{`data-gateway="` + gw + `"`, `data-purpose="settings"`, `data-lang="en"`, `<script src="/sim/widget/frame.js"`, "Иван Менеджеров"} {
		if !strings.Contains(body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src "+gw) || !strings.Contains(csp, "frame-src "+gw) || h.Get("Cache-Control") != "no-store" {
		t.Errorf("settings headers: %v", h)
	}
	body, _ = open("/sim/widget/settings", url.Values{}, http.StatusOK) // the account's admin, in the admin's language
	if token(body, 9000001, true) == first || !strings.Contains(body, `data-lang="ru"`) {
		t.Error("a second load reuses the disposable token or ignores the user's language")
	}

	body, _ = open("/sim/widget/card", url.Values{"user": {"9000002"}, "entity": {"leads"}, "id": {strconv.Itoa(lead)}}, http.StatusOK)
	token(body, 9000002, false)
	for _, want := range []string{`data-purpose="card"`, `data-entity="leads"`, `data-id="` + strconv.Itoa(lead) + `"`, "Заказ &lt;i&gt;",
		"Продажи → Первичный контакт", "Мария &lt;b&gt; &#43;79161234567", "Иван Менеджеров"} {
		if !strings.Contains(body, want) {
			t.Errorf("lead card lacks %q", want)
		}
	}
	body, _ = open("/sim/widget/card", url.Values{"entity": {"contacts"}, "id": {strconv.Itoa(contact)}, "lang": {"en"}}, http.StatusOK)
	token(body, 9000001, true)
	if !strings.Contains(body, `data-entity="contacts"`) || !strings.Contains(body, "&#43;79161234567") || !strings.Contains(body, "Заказ &lt;i&gt;") {
		t.Errorf("contact card: %s", body)
	}

	for _, c := range []struct {
		path   string
		q      url.Values
		status int
		en, ru string
	}{
		{"/sim/widget/card", url.Values{"entity": {"leads"}, "id": {"999"}}, http.StatusNotFound, "no lead 999", "нет сделки 999"},
		{"/sim/widget/card", url.Values{"entity": {"deals"}, "id": {strconv.Itoa(lead)}}, http.StatusBadRequest, "entity is leads or contacts", "entity — leads или contacts"},
		{"/sim/widget/card", url.Values{"entity": {"leads"}}, http.StatusBadRequest, "id must be", "id должен быть"},
		{"/sim/widget/settings", url.Values{"user": {"9000003"}}, http.StatusForbidden, "deactivated", "отключён"},
		{"/sim/widget/settings", url.Values{"user": {"1"}}, http.StatusNotFound, "no user 1", "нет пользователя 1"},
		{"/sim/widget/settings", url.Values{"account": {"7"}}, http.StatusNotFound, "no account 7", "нет аккаунта 7"},
		{"/sim/widget/settings", url.Values{"lang": {"de"}}, http.StatusBadRequest, "lang is ru or en", "lang — ru или en"},
	} {
		body, _ := open(c.path, c.q, c.status)
		if !strings.Contains(body, c.en) || !strings.Contains(body, c.ru) || tokenRE.MatchString(body) {
			t.Errorf("%s?%s: want %q and %q and no token: %s", c.path, c.q.Encode(), c.en, c.ru, body)
		}
	}

	resp, err := http.Get(sim.URL + "/sim/widget/frame.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(string(js), "/amocrm/widget/ticket") || !strings.Contains(string(js), "X-Auth-Token") {
		t.Errorf("frame.js: %s %.80s", resp.Header.Get("Content-Type"), js)
	}

	for _, bad := range []string{"ftp://x", "127.0.0.1:8080", "http://x/?a=1"} {
		if _, err := parseFlags([]string{"-gateway-url", bad}); err == nil {
			t.Errorf("-gateway-url %q accepted", bad)
		}
	}
}
