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
		"-dp-url", gw.URL + "/amocrm/dp"})
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
