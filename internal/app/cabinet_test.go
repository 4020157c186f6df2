package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/store"
)

// visitor is one browser: its own cookies, redirects not followed (the
// tests look at them).
type visitor struct {
	t   *testing.T
	e   *apptest.Env
	c   *http.Client
	jar *cookiejar.Jar
	// ip, when set, is sent as X-Forwarded-For (which must not count).
	ip   string
	lang string
	// accept, when set, is sent as Accept.
	accept string
}

func newVisitor(t *testing.T, e *apptest.Env) *visitor {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &visitor{t: t, e: e, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (v *visitor) do(method, path string, form url.Values) (*http.Response, string) {
	v.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, v.e.URL+path, body)
	if err != nil {
		v.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if v.ip != "" {
		req.Header.Set("X-Forwarded-For", v.ip)
	}
	if v.accept != "" {
		req.Header.Set("Accept", v.accept)
	}
	if v.lang != "" {
		req.Header.Set("Accept-Language", v.lang)
	}
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func (v *visitor) get(path string) (int, string) {
	v.t.Helper()
	r, b := v.do("GET", path, nil)
	return r.StatusCode, b
}

func (v *visitor) post(path string, form url.Values) (int, string) {
	v.t.Helper()
	r, b := v.do("POST", path, form)
	return r.StatusCode, b
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf is the token in a page's first form.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%.400s", page)
	}
	return m[1]
}

// login signs in through the form and returns the answer's status.
func (v *visitor) login(email, pw string) int {
	v.t.Helper()
	_, page := v.get("/login")
	st, _ := v.post("/login", url.Values{"csrf": {csrfOf(v.t, page)}, "email": {email}, "password": {pw}})
	return st
}

func (v *visitor) cookie(name string) string {
	u, _ := url.Parse(v.e.URL)
	for _, c := range v.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// addUser creates a cabinet user with the admin token (apptest.AddUser,
// kept as a name for the many tests that call it).
func addUser(t *testing.T, e *apptest.Env, ws, email, role, pw string) string {
	t.Helper()
	return apptest.AddUser(t, e, ws, email, role, pw)
}

const ownerPW = "owner password 1"

func TestCabinetUsersAPI(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Other"})
		otherWS := other["id"].(string)
		_, tok := e.Do("POST", "/api/v1/workspaces/"+ws+"/tokens", map[string]any{"name": "ci"})
		wsToken := tok["token"].(string)

		st, body := e.Do("POST", "/api/v1/workspaces/"+ws+"/users", map[string]any{"email": " Owner@Example.COM ", "role": "owner", "name": "Анна"})
		if st != http.StatusCreated || body["email"] != "owner@example.com" || body["role"] != "owner" || len(body["password"].(string)) != 16 {
			t.Fatalf("create owner: %d %v", st, body)
		}
		if _, ok := body["password_hash"]; ok {
			t.Fatal("the hash is shown")
		}
		owner := body["id"].(string)
		// The generated password signs in.
		if st := newVisitor(t, e).login("owner@example.com", body["password"].(string)); st != 303 {
			t.Fatalf("sign in with the generated password: %d", st)
		}

		count := func() int {
			_, l := e.Do("GET", "/api/v1/workspaces/"+ws+"/users", nil)
			return len(l["data"].([]any))
		}
		for _, c := range []struct {
			body   map[string]any
			status int
			code   string
		}{
			{map[string]any{"email": "not-an-email", "role": "admin"}, 422, "email_invalid"},
			{map[string]any{"email": "Name <x@example.com>", "role": "admin"}, 422, "email_invalid"},
			{map[string]any{"email": "x@example.com", "role": "boss"}, 422, "role_invalid"},
			{map[string]any{"email": "x@example.com", "role": "admin", "password": "123456789"}, 422, "password_too_short"},
			{map[string]any{"email": "x@example.com", "role": "admin", "password": strings.Repeat("я", 200)}, 422, "password_too_long"},
			{map[string]any{"email": "x@example.com", "role": "admin", "language": "de"}, 422, "language_invalid"},
			{map[string]any{"email": "x@example.com", "role": "admin", "name": "a\nb"}, 422, "name_invalid"},
			{map[string]any{"email": "owner@example.com", "role": "admin", "password": "0123456789"}, 409, "email_taken"},
			{map[string]any{"email": "x@example.com", "role": "admin", "extra": 1}, 400, "invalid_json"},
		} {
			st, body := e.Do("POST", "/api/v1/workspaces/"+ws+"/users", c.body)
			if st != c.status || body["error"].(map[string]any)["code"] != c.code {
				t.Errorf("%v: %d %v, want %d %s", c.body, st, body, c.status, c.code)
			}
		}
		if n := count(); n != 1 {
			t.Fatalf("refused requests added users: %d", n)
		}
		// The same e-mail in another workspace is another person.
		if st, b := e.Do("POST", "/api/v1/workspaces/"+otherWS+"/users", map[string]any{"email": "owner@example.com", "role": "owner", "password": "0123456789"}); st != 201 {
			t.Fatalf("same e-mail elsewhere: %d %v", st, b)
		}

		// A workspace token manages its own workspace's people, not others'.
		st, body = e.Do("POST", "/api/v1/workspaces/"+ws+"/users", map[string]any{"email": "m@example.com", "role": "manager", "password": "manager pass"}, wsToken)
		if st != 201 {
			t.Fatalf("workspace token adds a manager: %d %v", st, body)
		}
		manager := body["id"].(string)
		_, ol := e.Do("GET", "/api/v1/workspaces/"+otherWS+"/users", nil)
		otherOwner := ol["data"].([]any)[0].(map[string]any)["id"].(string)
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/workspaces/" + otherWS + "/users"},
			{"POST", "/api/v1/workspaces/" + otherWS + "/users"},
			{"DELETE", "/api/v1/workspaces/" + otherWS + "/users/" + otherOwner},
			{"DELETE", "/api/v1/workspaces/" + ws + "/users/" + otherOwner},
			{"PUT", "/api/v1/workspaces/" + otherWS + "/users/" + otherOwner + "/crm_links"},
		} {
			var b any
			if c.method == "POST" {
				b = map[string]any{"email": "intruder@example.com", "role": "owner", "password": "0123456789"}
			} else if c.method == "PUT" {
				b = map[string]any{}
			}
			if st, body := e.Do(c.method, c.path, b, wsToken); st != 404 {
				t.Errorf("%s %s with another workspace's token: %d %v", c.method, c.path, st, body)
			}
		}
		if _, ol := e.Do("GET", "/api/v1/workspaces/"+otherWS+"/users", nil); len(ol["data"].([]any)) != 1 {
			t.Fatalf("the other workspace's people changed: %v", ol)
		}

		// CRM links: only this workspace's integrations and their known users.
		in, _, err := e.App.Store.UpsertIntegration(context.Background(), store.InstallParams{Type: "bitrix24", ExternalID: "m1", Domain: "m1.bitrix24.ru", WorkspaceID: ws})
		if err != nil {
			t.Fatal(err)
		}
		elsewhere, _, err := e.App.Store.UpsertIntegration(context.Background(), store.InstallParams{Type: "bitrix24", ExternalID: "m2", Domain: "m2.bitrix24.ru", WorkspaceID: otherWS})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.App.Store.ReplaceCRMUsers(context.Background(), in.ID, []store.CRMUser{{UserID: "7", Name: "Ivan", Active: true}, {UserID: "8", Name: "Olga", Active: true}}); err != nil {
			t.Fatal(err)
		}
		links := "/api/v1/workspaces/" + ws + "/users/" + manager + "/crm_links"
		for _, c := range []struct {
			body   map[string]any
			status int
			code   string
		}{
			{map[string]any{in.ID: "99"}, 422, "crm_user_unknown"},
			{map[string]any{elsewhere.ID: "7"}, 422, "integration_unknown"},
			{map[string]any{"junk": "7"}, 422, "integration_unknown"},
			{map[string]any{in.ID: 7}, 400, "invalid_json"},
		} {
			st, body := e.Do("PUT", links, c.body)
			if st != c.status || body["error"].(map[string]any)["code"] != c.code {
				t.Errorf("links %v: %d %v, want %d %s", c.body, st, body, c.status, c.code)
			}
		}
		if st, body := e.Do("PUT", links, map[string]any{in.ID: "7"}, wsToken); st != 200 || body["crm_links"].(map[string]any)[in.ID] != "7" {
			t.Fatalf("link: %d %v", st, body)
		}
		if st, body := e.Do("PUT", "/api/v1/workspaces/"+ws+"/users/"+owner+"/crm_links", map[string]any{in.ID: "7"}); st != 409 || body["error"].(map[string]any)["code"] != "crm_user_taken" {
			t.Fatalf("a CRM user linked twice: %d %v", st, body)
		}
		_, l := e.Do("GET", "/api/v1/workspaces/"+ws+"/users", nil)
		for _, u := range l["data"].([]any) {
			u := u.(map[string]any)
			want := map[string]any{}
			if u["id"] == manager {
				want[in.ID] = "7"
			}
			if got := u["crm_links"].(map[string]any); len(got) != len(want) || (len(want) > 0 && got[in.ID] != "7") {
				t.Errorf("%s links %v, want %v", u["email"], got, want)
			}
		}

		// The last owner stays; the manager may go.
		if st, body := e.Do("DELETE", "/api/v1/workspaces/"+ws+"/users/"+owner, nil); st != 409 || body["error"].(map[string]any)["code"] != "last_owner" {
			t.Fatalf("last owner: %d %v", st, body)
		}
		if st, _ := e.Do("DELETE", "/api/v1/workspaces/"+ws+"/users/"+manager, nil, wsToken); st != 200 {
			t.Fatalf("delete manager: %d", st)
		}
		if st, _ := e.Do("DELETE", "/api/v1/workspaces/"+ws+"/users/"+manager, nil); st != 404 {
			t.Fatalf("delete again: %d", st)
		}
		if n := count(); n != 1 {
			t.Fatalf("users after delete: %d", n)
		}
	})
}

// Sign-in: cookie flags, a new session id at every sign-in, one answer
// for unknown e-mail and wrong password, sign-out and sign-out everywhere.
func TestCabinetSignIn(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		v := newVisitor(t, e)

		// Signed out, / leads to the sign-in page (not a JSON 404).
		if r, _ := v.do("GET", "/", nil); r.StatusCode != 303 || r.Header.Get("Location") != "/login" {
			t.Fatalf("/ signed out: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		// Russian unless the browser prefers English.
		if _, page := v.get("/login"); !strings.Contains(page, "Войти") {
			t.Fatalf("login page not in Russian:\n%.300s", page)
		}
		v.lang = "en-US,en;q=0.9,ru;q=0.5"
		if _, page := v.get("/login"); !strings.Contains(page, "Sign in") || strings.Contains(page, "Войти") {
			t.Fatal("login page not in English for an English browser")
		}
		v.lang = ""

		// Unknown e-mail and wrong password: the same answer.
		_, page := v.get("/login")
		form := url.Values{"csrf": {csrfOf(t, page)}, "email": {"nobody@example.com"}, "password": {"whatever 123"}}
		st1, unknown := v.post("/login", form)
		_, page = v.get("/login")
		form = url.Values{"csrf": {csrfOf(t, page)}, "email": {"owner@example.com"}, "password": {"whatever 123"}}
		st2, wrong := v.post("/login", form)
		strip := func(s string) string {
			s = csrfField.ReplaceAllString(s, "")
			return strings.ReplaceAll(strings.ReplaceAll(s, "nobody@example.com", "E"), "owner@example.com", "E")
		}
		if st1 != 401 || st2 != 401 || strip(unknown) != strip(wrong) {
			t.Fatalf("unknown e-mail (%d) and wrong password (%d) answer differently", st1, st2)
		}

		// Session fixation: a session id planted before sign-in is not
		// the one after it.
		u, _ := url.Parse(e.URL)
		v.jar.SetCookies(u, []*http.Cookie{{Name: "sb_session", Value: "planted-by-attacker", Path: "/"}})
		_, page = v.get("/login")
		resp, _ := v.do("POST", "/login", url.Values{"csrf": {csrfOf(t, page)}, "email": {"Owner@Example.com"}, "password": {ownerPW}})
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
			t.Fatalf("sign in: %d", resp.StatusCode)
		}
		var ses *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "sb_session" {
				ses = c
			}
		}
		if ses == nil || ses.Value == "planted-by-attacker" || len(ses.Value) < 43 {
			t.Fatalf("session cookie after sign-in: %+v", ses)
		}
		if !ses.HttpOnly || ses.SameSite != http.SameSiteLaxMode || ses.Secure || ses.Path != "/" {
			t.Fatalf("cookie flags on http: %+v", ses)
		}
		first := ses.Value
		if st, page := v.get("/"); st != 200 || !strings.Contains(page, "owner@example.com") {
			t.Fatalf("home: %d", st)
		}
		// Signing in over a live session (one planted, or one's own) makes
		// another id and ends the one before.
		again := newVisitor(t, e)
		_, page = again.get("/login")
		again.jar.SetCookies(u, []*http.Cookie{{Name: "sb_session", Value: first, Path: "/"}})
		if st, _ := again.post("/login", url.Values{"csrf": {csrfOf(t, page)}, "email": {"owner@example.com"}, "password": {ownerPW}}); st != 303 || again.cookie("sb_session") == first {
			t.Fatalf("second sign-in: %d, same id %v", st, again.cookie("sb_session") == first)
		}
		v = again
		stale := newVisitor(t, e)
		stale.jar.SetCookies(u, []*http.Cookie{{Name: "sb_session", Value: first, Path: "/"}})
		if st, _ := stale.get("/"); st != 303 {
			t.Fatalf("the session before the new sign-in still works: %d", st)
		}
		// Only the hash of the id is stored.
		if n := countRows(t, e, "cabinet_sessions", "id_hash = ?", v.cookie("sb_session")); n != 0 {
			t.Fatal("the session id is stored as it is")
		}

		// Sign out: the session ends.
		_, home := v.get("/")
		kept := v.cookie("sb_session")
		if st, _ := v.post("/logout", url.Values{"csrf": {csrfOf(t, home)}}); st != 303 {
			t.Fatalf("logout: %d", st)
		}
		replay := newVisitor(t, e)
		replay.jar.SetCookies(u, []*http.Cookie{{Name: "sb_session", Value: kept, Path: "/"}})
		if st, _ := replay.get("/"); st != 303 {
			t.Fatalf("a signed-out session works: %d", st)
		}

		// Sign out everywhere: the other device's session ends too.
		phone, laptop := newVisitor(t, e), newVisitor(t, e)
		phone.login("owner@example.com", ownerPW)
		laptop.login("owner@example.com", ownerPW)
		_, home = laptop.get("/")
		if st, _ := laptop.post("/logout/everywhere", url.Values{"csrf": {csrfOf(t, home)}}); st != 303 {
			t.Fatalf("logout everywhere: %d", st)
		}
		if st, _ := phone.get("/"); st != 303 {
			t.Fatalf("the phone's session survived sign-out everywhere: %d", st)
		}
		if n := countRows(t, e, "cabinet_sessions", "1 = 1"); n != 0 {
			t.Fatalf("%d sessions left", n)
		}
		e.NoPasswordsInLogs(ownerPW)
	})
}

func countRows(t *testing.T, e *apptest.Env, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.App.DB.Gorm.Table(table).Where(where, args...).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCabinetSecureCookie(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Config: func(c *config.Config) { c.PublicURL = "https://sb.example.com" }})
	addUser(t, e, e.App.DefaultWorkspace.ID, "owner@example.com", "owner", ownerPW)
	v := newVisitor(t, e)
	_, page := v.get("/login")
	resp, _ := v.do("POST", "/login", url.Values{"csrf": {csrfOf(t, page)}, "email": {"owner@example.com"}, "password": {ownerPW}})
	found := false
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, "sb_session=") {
			found = true
			if !strings.Contains(h, "; Secure") || !strings.Contains(h, "; HttpOnly") || !strings.Contains(h, "SameSite=Lax") {
				t.Fatalf("session cookie behind https: %s", h)
			}
		}
	}
	if !found {
		t.Fatalf("no session cookie: %d %v", resp.StatusCode, resp.Header)
	}
}

// CSRF: every form and non-GET request of the cabinet wants the
// session's token; without it or with another, 403 and nothing changes.
func TestCabinetCSRF(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	ws := e.App.DefaultWorkspace.ID
	addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
	v, other := newVisitor(t, e), newVisitor(t, e)
	v.login("owner@example.com", ownerPW)
	other.login("owner@example.com", ownerPW)
	_, mine := v.get("/")
	_, theirs := other.get("/")
	token, foreign := csrfOf(t, mine), csrfOf(t, theirs)
	if token == foreign {
		t.Fatal("two sessions share a CSRF token")
	}
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/language", url.Values{"lang": {"en"}}},
		{"/employees", url.Values{"email": {"new@example.com"}, "role": {"manager"}, "password": {"0123456789"}}},
		{"/logout", url.Values{}},
		{"/logout/everywhere", url.Values{}},
		// The shared chat's forms: refused before the dialog is looked at.
		{"/chat/dialogs/" + store.NewID() + "/send", url.Values{"text": {"привет"}}},
		{"/chat/dialogs/" + store.NewID() + "/no-reply-needed", url.Values{}},
		// The quick replies' forms (the add and edit forms carry a file).
		{"/templates/quick-replies", url.Values{"title": {"Привет"}, "text": {"Здравствуйте"}}},
		{"/templates/quick-replies/" + store.NewID(), url.Values{"title": {"Привет"}, "text": {"Здравствуйте"}}},
		{"/templates/quick-replies/" + store.NewID() + "/delete", url.Values{}},
		// Editing people and passwords.
		{"/employees/" + store.NewID(), url.Values{"name": {"x"}, "role": {"manager"}}},
		{"/employees/" + store.NewID() + "/password", url.Values{}},
		{"/account/password", url.Values{"current": {ownerPW}, "password": {"0123456789ab"}}},
	} {
		for _, tok := range []string{"", "forged", foreign} {
			f := url.Values{}
			for k, vs := range c.form {
				f[k] = vs
			}
			if tok != "" {
				f.Set("csrf", tok)
			}
			st, page := v.post(c.path, f)
			if st != 403 || !strings.Contains(page, "Запрос отклонён") || !strings.Contains(page, "Request refused") {
				t.Errorf("POST %s with csrf %q: %d", c.path, tok, st)
			}
		}
	}
	// Nothing changed: still signed in, same language, nobody added.
	if st, page := v.get("/"); st != 200 || !strings.Contains(page, `lang="ru"`) {
		t.Fatalf("after refused requests: %d", st)
	}
	if n := countRows(t, e, "cabinet_users", "1 = 1"); n != 1 {
		t.Fatalf("a refused form added a user: %d", n)
	}
	// The sign-in form too: without its token, or with another browser's.
	fresh := newVisitor(t, e)
	if st, _ := fresh.post("/login", url.Values{"email": {"owner@example.com"}, "password": {ownerPW}}); st != 403 {
		t.Fatalf("login without token: %d", st)
	}
	_, lp := newVisitor(t, e).get("/login")
	fresh.get("/login")
	if st, _ := fresh.post("/login", url.Values{"csrf": {csrfOf(t, lp)}, "email": {"owner@example.com"}, "password": {ownerPW}}); st != 403 {
		t.Fatalf("login with another browser's token: %d", st)
	}
	// Two sign-in tabs: the first one's form still works.
	tabs := newVisitor(t, e)
	_, tab1 := tabs.get("/login")
	tabs.get("/login")
	if st, _ := tabs.post("/login", url.Values{"csrf": {csrfOf(t, tab1)}, "email": {"owner@example.com"}, "password": {ownerPW}}); st != 303 {
		t.Fatalf("the first tab's sign-in: %d", st)
	}
	// With the token, it works.
	if st, _ := v.post("/language", url.Values{"csrf": {token}, "lang": {"en"}, "back": {"/"}}); st != 303 {
		t.Fatalf("language with the token: %d", st)
	}
	if _, page := v.get("/"); !strings.Contains(page, `lang="en"`) || !strings.Contains(page, "Sign out") {
		t.Fatal("the language did not change")
	}
}

// Sign-in is locked after repeated failures per e-mail and per address;
// X-Forwarded-For from an untrusted peer does not dodge it.
func TestCabinetLoginRateLimit(t *testing.T) {
	apptest.Each(t, apptest.Options{Config: func(c *config.Config) { c.LoginFailuresPerIP = 8 }}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		addUser(t, e, ws, "a@example.com", "owner", ownerPW)
		addUser(t, e, ws, "b@example.com", "admin", "b password 1")
		addUser(t, e, ws, "c@example.com", "admin", "c password 1")
		v := newVisitor(t, e)
		for i := range 5 {
			v.ip = "203.0.113." + string(rune('1'+i)) // spoofed; must not matter
			if st := v.login("a@example.com", "wrong password"); st != 401 {
				t.Fatalf("failure %d: %d", i, st)
			}
		}
		// The account is locked, even with the right password.
		if st := v.login("a@example.com", ownerPW); st != 429 {
			t.Fatalf("sixth attempt with the right password: %d", st)
		}
		if v.cookie("sb_session") != "" {
			t.Fatal("a locked account got a session")
		}
		// Another account from the same address still signs in (6 of 8).
		if st := newVisitor(t, e).login("b@example.com", "b password 1"); st != 303 {
			t.Fatalf("another account: %d", st)
		}
		// Unknown e-mails count against the address too: 8 failures lock
		// it for every account.
		for i := range 3 {
			if st := v.login("ghost"+string(rune('0'+i))+"@example.com", "whatever 123"); st != 401 && st != 429 {
				t.Fatalf("ghost %d: %d", i, st)
			}
		}
		if st := newVisitor(t, e).login("c@example.com", "c password 1"); st != 429 {
			t.Fatalf("the address is not locked after 8 failures: %d", st)
		}
		e.NoPasswordsInLogs(ownerPW, "b password 1", "c password 1", "wrong password")
	})
}

// Roles and workspaces: every cabinet route against a manager and a
// user of another workspace.
func TestCabinetRoles(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Другая"})
		otherWS := other["id"].(string)
		e.CreateWhatsApp()
		if st, b := e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "Чужой Instagram", "workspace_id": otherWS,
			"ig_user_id": apptest.IGUserID, "page_id": "1122334455", "access_token": apptest.IGToken}); st != 201 {
			t.Fatalf("other channel: %d %v", st, b)
		}
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		admin := addUser(t, e, ws, "admin@example.com", "admin", "admin password")
		addUser(t, e, ws, "manager@example.com", "manager", "manager password")
		otherOwner := addUser(t, e, otherWS, "boss@other.example", "owner", "other password")

		as := func(email, pw string) (*visitor, string) {
			v := newVisitor(t, e)
			if st := v.login(email, pw); st != 303 {
				t.Fatalf("%s sign-in: %d", email, st)
			}
			_, home := v.get("/")
			return v, csrfOf(t, home)
		}
		mgr, mgrTok := as("manager@example.com", "manager password")
		for _, c := range []struct {
			method, path string
			form         url.Values
		}{
			{"GET", "/employees", nil},
			{"POST", "/employees", url.Values{"email": {"x@example.com"}, "role": {"manager"}, "password": {"0123456789"}}},
			{"POST", "/employees/" + admin + "/delete", url.Values{}},
			{"GET", "/channels", nil},
			{"POST", "/channels", url.Values{"type": {"whatsapp"}}},
			{"GET", "/integrations", nil},
			{"GET", "/integrations/" + admin, nil},
			{"POST", "/integrations/" + admin + "/access", url.Values{}},
			{"POST", "/templates/quick-replies", url.Values{"title": {"x"}, "text": {"y"}}},
			{"POST", "/templates/quick-replies/" + admin, url.Values{"title": {"x"}, "text": {"y"}}},
			{"POST", "/templates/quick-replies/" + admin + "/delete", url.Values{}},
			{"POST", "/employees/" + admin, url.Values{"name": {"x"}, "role": {"manager"}}},
			{"POST", "/employees/" + admin + "/password", url.Values{}},
		} {
			if c.form != nil {
				c.form.Set("csrf", mgrTok)
			}
			r, page := mgr.do(c.method, c.path, c.form)
			if r.StatusCode != 403 || !strings.Contains(page, "Доступ запрещён") || !strings.Contains(page, "Access denied") {
				t.Errorf("manager %s %s: %d", c.method, c.path, r.StatusCode)
			}
		}
		if _, home := mgr.get("/"); strings.Contains(home, `href="/employees"`) || strings.Contains(home, `href="/channels"`) {
			t.Error("a manager is shown a link to a page they cannot open")
		}
		// The shared chat is every role's: a manager opens it from the menu.
		if _, home := mgr.get("/"); !strings.Contains(home, `href="/chat"`) {
			t.Error("a manager has no link to the shared chat")
		}
		for _, p := range []string{"/chat", "/chat/list", "/templates", "/account"} {
			if st, _ := mgr.get(p); st != 200 {
				t.Errorf("manager GET %s: %d", p, st)
			}
		}
		if n := countRows(t, e, "cabinet_users", "workspace_id = ?", ws); n != 3 {
			t.Fatalf("a manager changed the people: %d", n)
		}

		// An admin of this workspace manages its people but no owner, and
		// nobody of another workspace.
		adm, admTok := as("admin@example.com", "admin password")
		if st, page := adm.get("/employees"); st != 200 || !strings.Contains(page, "manager@example.com") || strings.Contains(page, "boss@other.example") {
			t.Fatalf("admin's employees page: %d", st)
		}
		if st, _ := adm.post("/employees", url.Values{"csrf": {admTok}, "email": {"o2@example.com"}, "role": {"owner"}, "password": {"0123456789"}}); st != 403 {
			t.Errorf("an admin made an owner: %d", st)
		}
		if st, _ := adm.post("/employees/"+otherOwner+"/delete", url.Values{"csrf": {admTok}}); st != 404 {
			t.Errorf("an admin deleted another workspace's owner: %d", st)
		}
		if st, page := adm.post("/employees", url.Values{"csrf": {admTok}, "email": {"new@example.com"}, "role": {"manager"}}); st != 200 || !regexp.MustCompile(`id="generated">\S{16}<`).MatchString(page) {
			t.Errorf("an admin adds a manager with a generated password: %d", st)
		}
		if st, page := adm.post("/employees", url.Values{"csrf": {admTok}, "email": {"bad"}, "role": {"manager"}}); st != 422 || !strings.Contains(page, `data-field="email"`) ||
			!strings.Contains(page, "Укажите адрес электронной почты") {
			t.Errorf("a bad e-mail in the form: %d", st)
		}
		// Refusals in the page's language (a new user saw the API's English).
		for _, c := range []struct {
			form        url.Values
			field, text string
		}{
			{url.Values{"email": {"short@example.com"}, "role": {"manager"}, "password": {"short"}}, "password", "Пароль — не короче 10 символов."},
			{url.Values{"email": {"manager@example.com"}, "role": {"manager"}}, "email", "Сотрудник с такой почтой уже есть."},
		} {
			c.form.Set("csrf", admTok)
			if st, page := adm.post("/employees", c.form); st != 422 || !strings.Contains(page, `data-field="`+c.field+`"`) || !strings.Contains(page, c.text) {
				t.Errorf("%v: %d, want %q on the page", c.form, st, c.text)
			}
		}
		if n := countRows(t, e, "cabinet_users", "workspace_id = ?", otherWS); n != 1 {
			t.Fatalf("the other workspace's people changed: %d", n)
		}

		// Each sees their own workspace's channels only.
		own, _ := as("owner@example.com", ownerPW)
		_, home := own.get("/")
		if !strings.Contains(home, "Продажи WA") || strings.Contains(home, "Чужой Instagram") {
			t.Fatalf("owner's home shows the wrong channels:\n%s", home)
		}
		boss, _ := as("boss@other.example", "other password")
		_, home = boss.get("/")
		if strings.Contains(home, "Продажи WA") || !strings.Contains(home, "Чужой Instagram") {
			t.Fatal("another workspace's owner sees this workspace's channels")
		}
		// No page carries a password or a hash.
		for _, v := range []*visitor{own, adm, mgr, boss} {
			for _, p := range []string{"/", "/employees"} {
				_, page := v.get(p)
				if strings.Contains(page, "$argon2id$") || strings.Contains(page, ownerPW) || strings.Contains(page, apptest.WAToken) {
					t.Errorf("%s shows a secret", p)
				}
			}
		}
		e.NoPasswordsInLogs(ownerPW, "admin password", "manager password", "other password")
	})
}

// TestUnknownAddressAnswersInKind: a browser that opens a mistyped or
// outdated cabinet address gets the "not found" page in its language,
// with a way home; a program (and anything under /api/) gets JSON.
func TestUnknownAddressAnswersInKind(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	get := func(path, accept, lang string) (*http.Response, string) {
		t.Helper()
		v := newVisitor(t, e)
		v.accept, v.lang = accept, lang
		return v.do("GET", path, nil)
	}
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, c := range []struct{ lang, want string }{{"ru-RU,ru;q=0.9", "Главная"}, {"en-GB,en;q=0.9", "Home"}} {
		r, page := get("/chats", browser, c.lang)
		if r.StatusCode != http.StatusNotFound || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: /chats in a browser: %d %s", c.lang, r.StatusCode, r.Header.Get("Content-Type"))
		}
		if !strings.Contains(page, "Не найдено.") || !strings.Contains(page, "Not found.") || !strings.Contains(page, `<a href="/">`+c.want+`</a>`) {
			t.Fatalf("%s: /chats page has no way home in its language:\n%.600s", c.lang, page)
		}
	}
	for _, c := range []struct{ path, accept string }{{"/chats", "application/json"}, {"/api/v1/nope", browser}, {"/webhooks/nope", browser}} {
		r, body := get(c.path, c.accept, "ru")
		if r.StatusCode != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
			t.Fatalf("%s (Accept %s): %d %s", c.path, c.accept, r.StatusCode, body)
		}
	}
}
