package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/store"
)

var amoOpts = apptest.Options{AmoCRM: true}

const (
	amoAccount   = 30123456
	amoAmojoID   = "2f4b7c1e-6a3d-4e8f-9b21-5c0d7e8f9a10"
	amoMain      = "7000001"
	amoFirstOpen = "61000002"
	amoSecond    = "7000002"
	amoSecondSt  = "61000011"
)

// addAmoAccount adds the fixtures' account to the simulator.
func addAmoAccount(t *testing.T, e *apptest.Env) {
	t.Helper()
	if err := e.Amo.AddAccount(amosim.ExampleAccount()); err != nil {
		t.Fatal(err)
	}
}

// amoGet calls the gateway without the admin token and without following
// redirects: what amoCRM or a browser sees.
func amoGet(t *testing.T, e *apptest.Env, path string, q url.Values) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	u := e.URL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// amoIntegrations lists the amoCRM integrations the admin sees.
func amoIntegrations(t *testing.T, e *apptest.Env) []map[string]any {
	t.Helper()
	_, list := e.Do("GET", "/api/v1/integrations", nil)
	var out []map[string]any
	for _, v := range list["data"].([]any) {
		if m := v.(map[string]any); m["type"] == "amocrm" {
			out = append(out, m)
		}
	}
	return out
}

// installAmoWidget installs the widget as amoCRM does (the server-to-server
// callback with from_widget) and waits for the queued exchange to record
// the account, active. It returns the integration and its workspace.
func installAmoWidget(t *testing.T, e *apptest.Env) (string, string) {
	t.Helper()
	before := e.Amo.TokenRequests()["authorization_code"]
	q, err := e.Amo.InstallRedirect(amoAccount)
	if err != nil {
		t.Fatal(err)
	}
	st, page, _ := amoGet(t, e, "/amocrm/oauth/callback", q)
	if st != http.StatusOK || !strings.Contains(page, "Switchboard") || !strings.Contains(page, "подключается") {
		t.Fatalf("install callback: %d %s", st, page)
	}
	var id, ws string
	e.Eventually("account recorded after the queued exchange", func() bool {
		if e.Amo.TokenRequests()["authorization_code"] <= before {
			return false
		}
		for _, in := range amoIntegrations(t, e) {
			if in["state"] == "active" {
				id, ws = in["id"].(string), in["workspace_id"].(string)
			}
		}
		return id != ""
	})
	e.WaitIdle()
	return id, ws
}

// installSecondAmoAccount adds a second account ("second", in
// Asia/Almaty) to the simulator and installs the widget in it, as amoCRM
// calls the install callback; the queued exchange records it later.
func installSecondAmoAccount(t *testing.T, e *apptest.Env) amosim.AccountSpec {
	t.Helper()
	second := amosim.ExampleAccount()
	second.ID, second.Subdomain, second.Timezone, second.AmojoID = 30999999, "second", "Asia/Almaty", "9e0c1b2a-0000-4000-8000-000000000002"
	if err := e.Amo.AddAccount(second); err != nil {
		t.Fatal(err)
	}
	q, err := e.Amo.InstallRedirect(second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st, body, _ := amoGet(t, e, "/amocrm/oauth/callback", q); st != http.StatusOK {
		t.Fatalf("install: %d %s", st, body)
	}
	return second
}

// tokenCalls counts every call of the simulator's token endpoint, refused
// ones included.
func tokenCalls(e *apptest.Env) int {
	n := 0
	for _, v := range e.Amo.TokenRequests() {
		n += v
	}
	return n
}

// storedAmo is the integration and its tokens as stored.
func storedAmo(t *testing.T, e *apptest.Env, id string) (*store.Integration, store.IntegrationSecrets) {
	t.Helper()
	in, err := e.App.Store.GetIntegration(context.Background(), store.All, id)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := e.App.Store.Secrets(in)
	if err != nil {
		t.Fatal(err)
	}
	return in, sec
}

func amoState(t *testing.T, e *apptest.Env, id string) string {
	t.Helper()
	_, v := e.Do("GET", "/api/v1/integrations/"+id, nil)
	s, _ := v["state"].(string)
	return s
}

func TestAmoCRMWidgetInstall(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, ws := installAmoWidget(t, e)
		if ws != e.App.DefaultWorkspace.ID {
			t.Fatalf("a single-tenant gateway's first account landed in %s, not the default workspace", ws)
		}
		in, sec := storedAmo(t, e, id)
		if in.ExternalID != "30123456" || in.Domain != e.AmoHost || in.ChatAccountID != amoAmojoID || in.Language != "ru" || in.InstalledBy != "9000001" {
			t.Fatalf("stored account: %+v", in)
		}
		if sec.AccessToken == "" || sec.RefreshToken == "" || strings.Contains(in.AccessToken, sec.AccessToken) || strings.Contains(in.RefreshToken, sec.RefreshToken) {
			t.Fatal("tokens are not stored sealed")
		}
		if in.TokenExpiresAt == nil || time.Until(*in.TokenExpiresAt) < 23*time.Hour {
			t.Fatalf("token expiry: %v", in.TokenExpiresAt)
		}
		// The users, with the inactive one, as the settings show them.
		st, set := e.Do("GET", "/api/v1/integrations/"+id+"/settings", nil)
		users, _ := set["users"].([]any)
		if st != http.StatusOK || len(users) != 3 {
			t.Fatalf("settings: %d %v", st, set)
		}
		for _, u := range users {
			m := u.(map[string]any)
			if want := m["user_id"] != "9000003"; m["active"] != want {
				t.Fatalf("user %v active=%v", m["user_id"], m["active"])
			}
		}

		// A reinstall of the same account updates it: one integration, the
		// new pair stored.
		installAmoWidget(t, e)
		if n := len(amoIntegrations(t, e)); n != 1 {
			t.Fatalf("%d amoCRM integrations after a reinstall", n)
		}
		_, sec2 := storedAmo(t, e, id)
		if sec2.AccessToken == sec.AccessToken || sec2.RefreshToken == sec.RefreshToken {
			t.Fatal("the reinstall's tokens were not stored")
		}
		// The same code again (amoCRM never sends one twice, a replay does):
		// refused at amoCRM, nothing changes.
		q, _ := e.Amo.InstallRedirect(amoAccount)
		amoGet(t, e, "/amocrm/oauth/callback", q)
		e.WaitIdle()
		amoGet(t, e, "/amocrm/oauth/callback", q)
		e.WaitIdle()
		if n := len(amoIntegrations(t, e)); n != 1 || amoState(t, e, id) != "active" {
			t.Fatalf("after a replayed code: %d integrations, state %s", n, amoState(t, e, id))
		}
	})
}

// newWorkspaceToken makes a workspace and a token for it.
func newWorkspaceToken(t *testing.T, e *apptest.Env, name string) (string, string) {
	t.Helper()
	_, w := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": name})
	ws := w["id"].(string)
	_, tok := e.Do("POST", "/api/v1/workspaces/"+ws+"/tokens", map[string]any{"name": "admin"})
	return ws, tok["token"].(string)
}

// startConsent starts the consent flow with a workspace token and returns
// the state amoCRM would echo.
func startConsent(t *testing.T, e *apptest.Env, token string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/amocrm/oauth/start", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "www.amocrm.ru" || loc.Query().Get("client_id") != apptest.AmoClientID || loc.Query().Get("state") == "" {
		t.Fatalf("consent start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("state")
}

func consentCallback(t *testing.T, e *apptest.Env, state string) (int, string) {
	t.Helper()
	code, err := e.Amo.IssueCode(amoAccount)
	if err != nil {
		t.Fatal(err)
	}
	st, body, _ := amoGet(t, e, "/amocrm/oauth/callback", url.Values{"code": {code}, "referer": {e.AmoHost}, "state": {state}, "platform": {"1"}})
	return st, body
}

func TestAmoCRMConsentFlowAndTenants(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		wsA, tokA := newWorkspaceToken(t, e, "Филиал А")
		wsB, tokB := newWorkspaceToken(t, e, "Филиал Б")

		state := startConsent(t, e, tokA)
		st, page := consentCallback(t, e, state)
		if st != http.StatusOK || !strings.Contains(page, "подключён") || !strings.Contains(page, "connected") {
			t.Fatalf("consent callback: %d %s", st, page)
		}
		list := amoIntegrations(t, e)
		if len(list) != 1 || list[0]["workspace_id"] != wsA || list[0]["state"] != "active" {
			t.Fatalf("after consent: %v", list)
		}
		id := list[0]["id"].(string)

		// The state works once; an unknown one not at all. Neither changes
		// anything (the code is not even exchanged).
		codes := tokenCalls(e)
		for _, s := range []string{state, "forged-state", ""} {
			if st, body := consentCallback(t, e, s); st != http.StatusBadRequest || !strings.Contains(body, "state_invalid") {
				t.Fatalf("state %q: %d %s", s, st, body)
			}
		}
		if got := tokenCalls(e); got != codes {
			t.Fatalf("a refused state still exchanged a code (%d → %d)", codes, got)
		}

		// The account is workspace A's: B's consent for it is refused, and
		// it stays in A.
		st, body := consentCallback(t, e, startConsent(t, e, tokB))
		if st != http.StatusConflict || !strings.Contains(body, "account_in_other_workspace") {
			t.Fatalf("consent into another workspace: %d %s", st, body)
		}
		if l := amoIntegrations(t, e); len(l) != 1 || l[0]["workspace_id"] != wsA {
			t.Fatalf("after the refused consent: %v", l)
		}

		// B's token sees nothing of A's integration.
		chB := createWAIn(t, e, wsB)
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/integrations/" + id},
			{"GET", "/api/v1/integrations/" + id + "/settings"},
			{"POST", "/api/v1/integrations/" + id + "/refresh"},
			{"PUT", "/api/v1/integrations/" + id + "/channels/" + chB},
			{"DELETE", "/api/v1/integrations/" + id + "/channels/" + chB},
		} {
			var body any
			if c.method == "PUT" {
				body = map[string]any{"mode": "crm"}
			}
			if st, v := e.Do(c.method, c.path, body, tokB); st != http.StatusNotFound {
				t.Fatalf("%s %s with another workspace's token: %d %v", c.method, c.path, st, v)
			}
		}
		_, v := e.Do("GET", "/api/v1/integrations", nil, tokB)
		if d, _ := v["data"].([]any); len(d) != 0 {
			t.Fatalf("workspace B lists %v", d)
		}
		// A's own token works.
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil, tokA); st != http.StatusOK {
			t.Fatalf("refresh with the owner's token: %d %v", st, v)
		}
		// The admin may deny on the consent page: nothing is connected.
		st, _, _ = amoGet(t, e, "/amocrm/oauth/callback", url.Values{"error": {"access_denied"}, "state": {startConsent(t, e, tokB)}})
		if st != http.StatusForbidden || len(amoIntegrations(t, e)) != 1 {
			t.Fatalf("denied consent: %d", st)
		}
	})
}

// A callback naming a host that is not an amoCRM account (or the test
// base) never makes the gateway call it, whichever route names it.
func TestAmoCRMForgedRefererNeverCalled(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		var calls atomic.Int64
		trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"token_type":"Bearer","access_token":"x","refresh_token":"y","expires_in":86400}`)
		}))
		defer trap.Close()
		trapHost := strings.TrimPrefix(trap.URL, "http://")
		_, tok := newWorkspaceToken(t, e, "Филиал")
		for _, ref := range []string{trapHost, "localhost:" + strings.Split(trapHost, ":")[1], "evil.example.com", "example.amocrm.ru.evil.com",
			"www.amocrm.ru", "a@example.amocrm.ru", "example.amocrm.ru/x", "http://" + trapHost} {
			q := url.Values{"code": {"def50200forged"}, "referer": {ref}, "from_widget": {"1"}}
			if st, body, _ := amoGet(t, e, "/amocrm/oauth/callback", q); st != http.StatusForbidden || !strings.Contains(body, "referer_not_allowed") {
				t.Fatalf("install callback with referer %q: %d %s", ref, st, body)
			}
			q = url.Values{"code": {"def50200forged"}, "referer": {ref}, "state": {startConsent(t, e, tok)}}
			if st, body, _ := amoGet(t, e, "/amocrm/oauth/callback", q); st != http.StatusForbidden || !strings.Contains(body, "referer_not_allowed") {
				t.Fatalf("consent callback with referer %q: %d %s", ref, st, body)
			}
			st, v := e.Do("POST", "/api/v1/integrations/amocrm", map[string]any{"referer": ref, "long_lived_token": "x.y.z"}, tok)
			if st != http.StatusForbidden || errCode(v) != "referer_not_allowed" || errField(v) != "referer" {
				t.Fatalf("long-lived token with referer %q: %d %v", ref, st, v)
			}
		}
		e.WaitIdle()
		if n := calls.Load(); n != 0 {
			t.Fatalf("the gateway called a forged referer %d times", n)
		}
		if n := len(amoIntegrations(t, e)); n != 0 {
			t.Fatalf("%d integrations from forged callbacks", n)
		}
	})
}

// jobRow is what the tests read of a queued job.
type jobRow struct {
	State    string
	RunAt    time.Time
	Attempts int
}

// jobs of a kind as the queue holds them.
func jobsOf(t *testing.T, e *apptest.Env, kind string) []jobRow {
	t.Helper()
	var out []jobRow
	if err := e.App.DB.Gorm.Table("jobs").Select("state, run_at, attempts").Where("kind = ?", kind).Find(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAmoCRMTokenRotationAndReauth(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, ws := installAmoWidget(t, e)
		ch := createWAIn(t, e, ws)
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, v)
		}
		// A customer writes while the account works: lead and note.
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79123456789", "Анна", "Здравствуйте"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the customer's lead and note", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		parked := func() bool {
			for _, j := range jobsOf(t, e, routing.JobMirror) {
				if j.State == queue.StatePending && j.RunAt.After(time.Now().Add(time.Minute)) {
					return true
				}
			}
			return false
		}
		_, old := storedAmo(t, e, id)

		// Expired access tokens, five admins refreshing at once: one
		// refresh at amoCRM, the rotated pair stored.
		e.Amo.ExpireAccessTokens(amoAccount)
		before := tokenCalls(e)
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil); st != http.StatusOK {
					t.Errorf("refresh after expiry: %d %v", st, v)
				}
			}()
		}
		wg.Wait()
		if got := tokenCalls(e) - before; got != 1 || e.Amo.TokenRequests()["refresh_token"] != 1 {
			t.Fatalf("%d refreshes for one expired token, want 1", got)
		}
		in, cur := storedAmo(t, e, id)
		if cur.RefreshToken == old.RefreshToken || cur.AccessToken == old.AccessToken || in.State != "active" {
			t.Fatalf("after the refresh: state %s, pair rotated %v", in.State, cur.RefreshToken != old.RefreshToken)
		}
		// The old refresh token is spent at amoCRM.
		body, _ := (apptestOAuth{e}).refresh(t, old.RefreshToken)
		if !strings.Contains(body, amosim.HintTokenRevoked) {
			t.Fatalf("reusing the old refresh token: %s", body)
		}

		// An instance that lost the rotated pair (here: the old pair put
		// back) refreshes with a spent token: amoCRM refuses, the account
		// needs re-authorisation, and its work is parked, not lost.
		if _, _, err := e.App.Store.RefreshTokens(context.Background(), id, func(*store.Integration, store.IntegrationSecrets) (store.IntegrationSecrets, time.Time, error) {
			return old, time.Time{}, nil
		}); err != nil {
			t.Fatal(err)
		}
		e.Amo.ExpireAccessTokens(amoAccount)
		st, v := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil)
		if st != http.StatusConflict || errCode(v) != crm.CodeNeedsReauth {
			t.Fatalf("refresh with a spent refresh token: %d %v", st, v)
		}
		if s := amoState(t, e, id); s != "needs_reauth" {
			t.Fatalf("state %s, want needs_reauth", s)
		}
		// Another message meanwhile is kept for the account: no call is
		// made while it cannot be called, the message waits for it.
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79123456789", "Анна", "Вы тут?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("second message stored", func() bool { return len(e.Messages(ch)) == 2 })
		e.WaitIdle()
		if n := len(e.Amo.Notes(amoAccount)); n != 1 {
			t.Fatalf("%d notes while needs_reauth", n)
		}
		// Binding needs the account: refused while it cannot be asked.
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm", "stage_id": "61000003"}); st != http.StatusConflict || errCode(v) != crm.CodeNeedsReauth {
			t.Fatalf("bind while needs_reauth: %d %v", st, v)
		}

		// The admin installs again: active, same integration, the parked
		// work re-armed: it runs at once and the message reaches the lead.
		installAmoWidget(t, e)
		if s := amoState(t, e, id); s != "active" || len(amoIntegrations(t, e)) != 1 {
			t.Fatalf("after reinstall: state %s", s)
		}
		e.Eventually("parked work resumed: the second note on the same lead", func() bool {
			ns := e.Amo.Notes(amoAccount)
			return len(ns) == 2 && ns[1].EntityID == ns[0].EntityID && strings.Contains(ns[1].Text(), "Вы тут?")
		})
		e.WaitIdle()
		if len(e.Amo.Leads(amoAccount)) != 1 || parked() {
			t.Fatalf("after resuming: %d leads, parked %v", len(e.Amo.Leads(amoAccount)), parked())
		}

		// amoCRM revokes the grant while work is on its way: the mirror
		// job meets 401, its refresh is refused, the account needs
		// re-authorisation and the job is parked, not failed.
		e.Amo.RevokeTokens(amoAccount)
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79123456789", "Анна", "Алло?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the job parked on a revoked grant", parked)
		if s := amoState(t, e, id); s != "needs_reauth" || len(e.Amo.Notes(amoAccount)) != 2 {
			t.Fatalf("state %s, %d notes", s, len(e.Amo.Notes(amoAccount)))
		}
		installAmoWidget(t, e)
		e.Eventually("the parked job ran after the reinstall", func() bool {
			ns := e.Amo.Notes(amoAccount)
			return len(ns) == 3 && strings.Contains(ns[2].Text(), "Алло?") && !parked()
		})
	})
}

// apptestOAuth calls the simulator's token endpoint directly, as another
// instance holding the old token would.
type apptestOAuth struct{ e *apptest.Env }

func (o apptestOAuth) refresh(t *testing.T, refreshToken string) (string, int) {
	t.Helper()
	body := `{"client_id":"` + apptest.AmoClientID + `","client_secret":"` + apptest.AmoSecret + `","grant_type":"refresh_token","refresh_token":"` +
		refreshToken + `","redirect_uri":"` + o.e.URL + `/amocrm/oauth/callback"}`
	resp, err := http.Post(o.e.AmoURL+"/oauth2/access_token", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

func TestAmoCRMDisableHook(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, ws := installAmoWidget(t, e)
		ch := createWAIn(t, e, ws)
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, v)
		}
		good := e.Amo.DisableHookQuery(amoAccount)
		bad := []url.Values{
			{"account_id": {"30123456"}, "client_uuid": {apptest.AmoClientID}, "signature": {strings.Repeat("0", 64)}},
			{"account_id": {"30123457"}, "client_uuid": {apptest.AmoClientID}, "signature": good["signature"]},
			{"account_id": {"30123456"}, "client_uuid": {"another-integration"}, "signature": good["signature"]},
			{"account_id": {"30123456"}, "client_uuid": {apptest.AmoClientID}},
		}
		for _, q := range bad {
			if st, body, _ := amoGet(t, e, "/amocrm/disabled", q); st != http.StatusUnauthorized || !strings.Contains(body, "signature_invalid") {
				t.Fatalf("disable hook %v: %d %s", q, st, body)
			}
		}
		_, v := e.Do("GET", "/api/v1/integrations/"+id, nil)
		if v["state"] != "active" || len(v["bindings"].([]any)) != 1 {
			t.Fatalf("a wrong signature changed the integration: %v", v)
		}

		if st, body, _ := amoGet(t, e, "/amocrm/disabled", good); st != http.StatusOK {
			t.Fatalf("disable hook: %d %s", st, body)
		}
		_, v = e.Do("GET", "/api/v1/integrations/"+id, nil)
		if v["state"] != "uninstalled" || len(v["bindings"].([]any)) != 0 {
			t.Fatalf("after the disable hook: %v", v)
		}
		if _, sec := storedAmo(t, e, id); sec.AccessToken != "" || sec.RefreshToken != "" {
			t.Fatal("a disabled account's tokens were kept")
		}
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil); st != http.StatusConflict || errCode(v) != crm.CodeUninstalled {
			t.Fatalf("refresh of a disabled account: %d %v", st, v)
		}
		// Installed again: the same integration comes back.
		installAmoWidget(t, e)
		if s := amoState(t, e, id); s != "active" || len(amoIntegrations(t, e)) != 1 {
			t.Fatalf("after reinstall: %s", s)
		}
	})
}

func TestAmoCRMLongLivedToken(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		ws, tok := newWorkspaceToken(t, e, "Филиал")
		for _, c := range []struct {
			body        map[string]any
			status      int
			code, field string
		}{
			{map[string]any{"long_lived_token": "x"}, 422, "referer_missing", "referer"},
			{map[string]any{"referer": e.AmoHost}, 422, "long_lived_token_invalid", "long_lived_token"},
			{map[string]any{"referer": e.AmoHost, "long_lived_token": "not-a-token"}, 422, "long_lived_token_refused", "long_lived_token"},
			{map[string]any{"referer": e.AmoHost, "long_lived_token": "x", "extra": 1}, 400, "", ""},
		} {
			st, v := e.Do("POST", "/api/v1/integrations/amocrm", c.body, tok)
			if st != c.status || (c.code != "" && (errCode(v) != c.code || errField(v) != c.field)) {
				t.Fatalf("%v: %d %v", c.body, st, v)
			}
		}
		if n := len(amoIntegrations(t, e)); n != 0 {
			t.Fatalf("%d integrations after refused tokens", n)
		}
		llt, err := e.Amo.LongLivedToken(amoAccount, 365*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		st, v := e.Do("POST", "/api/v1/integrations/amocrm", map[string]any{"referer": e.AmoHost, "long_lived_token": llt}, tok)
		if st != http.StatusCreated || v["workspace_id"] != ws || v["type"] != "amocrm" || v["state"] != "active" {
			t.Fatalf("long-lived token: %d %v", st, v)
		}
		id := v["id"].(string)
		if st, v = e.Do("POST", "/api/v1/integrations/amocrm", map[string]any{"referer": e.AmoHost, "long_lived_token": llt}, tok); st != http.StatusOK || v["id"] != id {
			t.Fatalf("the same account again: %d %v", st, v)
		}
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil, tok); st != http.StatusOK {
			t.Fatalf("refresh with a long-lived token: %d %v", st, v)
		}
		// Revoked: nothing to refresh with, the account needs a new token.
		e.Amo.RevokeTokens(amoAccount)
		before := tokenCalls(e)
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil, tok); st != http.StatusConflict || errCode(v) != crm.CodeNeedsReauth {
			t.Fatalf("refresh with a revoked long-lived token: %d %v", st, v)
		}
		if amoState(t, e, id) != "needs_reauth" || tokenCalls(e) != before {
			t.Fatal("a revoked long-lived token did not lead to needs_reauth without a refresh call")
		}
	})
}

func TestAmoCRMRefreshUsersAndBind(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, ws := installAmoWidget(t, e)
		ch := createWAIn(t, e, ws)
		path := "/api/v1/integrations/" + id + "/channels/" + ch

		// The manager is switched off in amoCRM: a refresh reads it.
		e.Amo.SetUserActive(amoAccount, 9000002, false)
		st, v := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil)
		if st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, v)
		}
		active := map[string]bool{}
		users, _ := e.App.Store.CRMUsers(context.Background(), id)
		for _, u := range users {
			active[u.UserID] = u.Active
		}
		if len(active) != 3 || !active["9000001"] || active["9000002"] || active["9000003"] {
			t.Fatalf("users after refresh: %v", active)
		}

		// A full binding in the second pipeline.
		good := map[string]any{"mode": "crm", "category_id": amoSecond, "stage_id": amoSecondSt, "name": "WA продажи",
			"owner":     map[string]any{"strategy": "round_robin", "users": []any{map[string]any{"user_id": "9000001", "weight": 2}}},
			"on_repeat": "new", "mirror": "hourly"}
		st, v = e.Do("PUT", path, good)
		if st != http.StatusOK || v["category_id"] != amoSecond || v["stage_id"] != amoSecondSt || v["mirror"] != "hourly" || v["on_repeat"] != "new" || v["name"] != "WA продажи" {
			t.Fatalf("bind: %d %v", st, v)
		}
		_, want := e.Do("GET", "/api/v1/integrations/"+id, nil)

		for _, c := range []struct {
			name        string
			body        map[string]any
			status      int
			code, field string
		}{
			{"status of another pipeline", map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": amoSecondSt}, 422, "stage_unknown", "stage_id"},
			{"won as entry", map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "142"}, 422, "stage_closed", "stage_id"},
			{"lost as entry", map[string]any{"mode": "crm", "stage_id": "143"}, 422, "stage_closed", "stage_id"},
			{"unknown pipeline", map[string]any{"mode": "crm", "category_id": "7000009"}, 422, "category_unknown", "category_id"},
			{"unknown status", map[string]any{"mode": "crm", "stage_id": "61999999"}, 422, "stage_unknown", "stage_id"},
			{"not a number", map[string]any{"mode": "crm", "category_id": "sales"}, 422, "category_id_invalid", "category_id"},
			{"open lines", map[string]any{"mode": "openlines", "line_id": "1"}, 400, "", ""},
			{"open lines mode", map[string]any{"mode": "openlines"}, 422, "mode_invalid", "mode"},
			{"deal", map[string]any{"mode": "crm", "entity": "deal"}, 422, "entity_invalid", "entity"},
			{"deactivated owner", map[string]any{"mode": "crm", "owner": map[string]any{"strategy": "round_robin", "users": []any{map[string]any{"user_id": "9000002", "weight": 1}}}}, 422, "owner_user_unknown", "owner.users[0].user_id"},
			{"bad mirror", map[string]any{"mode": "crm", "mirror": "weekly"}, 422, "mirror_invalid", "mirror"},
		} {
			st, v := e.Do("PUT", path, c.body)
			if st != c.status || (c.code != "" && (errCode(v) != c.code || errField(v) != c.field)) {
				t.Fatalf("%s: %d %v", c.name, st, v)
			}
			if _, got := e.Do("GET", "/api/v1/integrations/"+id, nil); !sameBindings(got, want) {
				t.Fatalf("%s changed the binding: %v", c.name, got["bindings"])
			}
		}

		// Defaults: the main pipeline's first regular status (not the
		// unsorted stage).
		if st, v = e.Do("PUT", path, map[string]any{"mode": "crm"}); st != http.StatusOK || v["category_id"] != amoMain || v["stage_id"] != amoFirstOpen || v["mirror"] != "each" {
			t.Fatalf("bind with defaults: %d %v", st, v)
		}
		// A status alone finds its pipeline.
		if st, v = e.Do("PUT", path, map[string]any{"mode": "crm", "stage_id": amoSecondSt}); st != http.StatusOK || v["category_id"] != amoSecond {
			t.Fatalf("bind by status: %d %v", st, v)
		}

		// The neutral settings serve the account as they serve Bitrix24.
		st, set := e.Do("PUT", "/api/v1/integrations/"+id+"/settings", map[string]any{"visibility": "own", "chat_admin_user_id": "9000001", "notify_after_seconds": 120})
		if st != http.StatusOK || set["visibility"] != "own" || set["chat_admin_user_id"] != "9000001" {
			t.Fatalf("settings: %d %v", st, set)
		}
		if st, set = e.Do("GET", "/api/v1/integrations/"+id+"/settings", nil); st != http.StatusOK || set["notify_after_seconds"] != float64(120) {
			t.Fatalf("settings read back: %d %v", st, set)
		}

		// Unbind.
		if st, _ := e.Do("DELETE", path, nil); st != http.StatusNoContent {
			t.Fatalf("unbind: %d", st)
		}
		_, v = e.Do("GET", "/api/v1/integrations/"+id, nil)
		if len(v["bindings"].([]any)) != 0 {
			t.Fatalf("bindings after unbind: %v", v["bindings"])
		}
		if st, _ := e.Do("DELETE", path, nil); st != http.StatusNotFound {
			t.Fatalf("second unbind: %d", st)
		}
	})
}

func sameBindings(a, b map[string]any) bool {
	ab, bb := a["bindings"].([]any), b["bindings"].([]any)
	if len(ab) != len(bb) {
		return false
	}
	for i := range ab {
		x, y := ab[i].(map[string]any), bb[i].(map[string]any)
		for _, k := range []string{"channel_id", "mode", "category_id", "stage_id", "name", "on_repeat", "mirror"} {
			if x[k] != y[k] {
				return false
			}
		}
		xo, _ := json.Marshal(x["owner"])
		yo, _ := json.Marshal(y["owner"])
		if string(xo) != string(yo) {
			return false
		}
	}
	return true
}

// Without the integration's keys every amoCRM route says so.
func TestAmoCRMNotConfigured(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	for _, p := range []string{"/amocrm/oauth/callback?code=x&referer=example.amocrm.ru&from_widget=1", "/amocrm/disabled?account_id=1"} {
		if st, body, _ := amoGet(t, e, p, nil); st != http.StatusServiceUnavailable || !strings.Contains(body, "amocrm_not_configured") {
			t.Fatalf("%s: %d %s", p, st, body)
		}
	}
	for _, c := range []struct{ method, path string }{{"GET", "/amocrm/oauth/start"}, {"POST", "/api/v1/integrations/amocrm"}} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"referer": "example.amocrm.ru", "long_lived_token": "x"}
		}
		if st, v := e.Do(c.method, c.path, body); st != http.StatusServiceUnavailable || errCode(v) != "amocrm_not_configured" {
			t.Fatalf("%s %s: %d %v", c.method, c.path, st, v)
		}
	}
}

// A token about to expire is refreshed before it is used: no call is
// refused on the way.
func TestAmoCRMRefreshBeforeExpiry(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, _ := installAmoWidget(t, e)
		_, old := storedAmo(t, e, id)
		soon := time.Now().Add(10 * time.Minute).UTC()
		if err := e.App.DB.Gorm.Table("integrations").Where("id = ?", id).Update("token_expires_at", soon).Error; err != nil {
			t.Fatal(err)
		}
		refused := e.Amo.Counts(amoAccount).Unauthorized
		if st, v := e.Do("POST", "/api/v1/integrations/"+id+"/refresh", nil); st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, v)
		}
		in, cur := storedAmo(t, e, id)
		if cur.RefreshToken == old.RefreshToken || in.TokenExpiresAt == nil || time.Until(*in.TokenExpiresAt) < 23*time.Hour {
			t.Fatalf("not refreshed ahead of expiry: expires %v", in.TokenExpiresAt)
		}
		if got := e.Amo.Counts(amoAccount).Unauthorized; got != refused {
			t.Fatalf("%d calls refused with 401 on the way", got-refused)
		}
	})
}

// A second account installed from its widget gets a workspace of its own
// (the auto rule), on the account's clock.
func TestAmoCRMSecondAccountOwnWorkspace(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		_, ws1 := installAmoWidget(t, e)
		installSecondAmoAccount(t, e)
		var ws2 string
		e.Eventually("second account recorded", func() bool {
			for _, in := range amoIntegrations(t, e) {
				if in["workspace_id"] != ws1 {
					ws2 = in["workspace_id"].(string)
				}
			}
			return ws2 != ""
		})
		if ws1 != e.App.DefaultWorkspace.ID || ws2 == ws1 {
			t.Fatalf("workspaces %s and %s", ws1, ws2)
		}
		if _, w := e.Do("GET", "/api/v1/workspaces/"+ws2, nil); w["timezone"] != "Asia/Almaty" {
			t.Fatalf("the new workspace's clock: %v", w["timezone"])
		}
		if n := len(amoIntegrations(t, e)); n != 2 {
			t.Fatalf("%d integrations", n)
		}
	})
}
