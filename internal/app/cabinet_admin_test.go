package app_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/store"
)

// saved posts a form that must succeed: a redirect to the page, which is
// returned.
func (v *visitor) saved(path string, form url.Values) string {
	v.t.Helper()
	r, body := v.do("POST", path, form)
	if r.StatusCode != http.StatusSeeOther {
		i := strings.Index(body, `class="problem"`)
		v.t.Fatalf("POST %s: %d, want 303\n%.400s", path, r.StatusCode, body[max(i, 0):])
	}
	_, page := v.get(r.Header.Get("Location"))
	return page
}

// refusedWith checks a page refused with the code, naming the field, in
// the page's language (want: a piece of the translated text).
func refusedWith(t *testing.T, page, code, field, want string) {
	t.Helper()
	if !strings.Contains(page, `data-code="`+code+`"`) || !strings.Contains(page, `data-field="`+html.EscapeString(field)+`"`) || !strings.Contains(page, want) {
		i := strings.Index(page, `class="problem"`)
		t.Errorf("want refusal %s on %s with %q; got:\n%.600s", code, field, want, page[max(i, 0):])
	}
}

// The channels page adds, re-tokens and disables channels through the
// API's own checks: every refusal names the field in the reader's
// language and changes nothing.
func TestCabinetChannelsPage(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		addUser(t, e, ws, "manager@example.com", "manager", "manager password")
		v := newVisitor(t, e)
		v.lang = "ru"
		if st := v.login("owner@example.com", ownerPW); st != http.StatusSeeOther {
			t.Fatalf("sign in: %d", st)
		}
		st, page := v.get("/channels")
		if st != http.StatusOK || !strings.Contains(page, "/webhooks/meta</code>") || !strings.Contains(page, apptest.VerifyToken) {
			t.Fatalf("channels page: %d\n%.800s", st, page)
		}
		csrf := csrfOf(t, page)
		form := func(kv ...string) url.Values {
			f := url.Values{"csrf": {csrf}, "type": {"whatsapp"}, "name": {"Продажи"}, "phone_number_id": {apptest.PhoneNumberID},
				"waba_id": {apptest.WabaID}, "access_token": {apptest.WAToken}}
			for i := 0; i < len(kv); i += 2 {
				f.Set(kv[i], kv[i+1])
			}
			return f
		}
		for _, c := range []struct {
			name             string
			form             url.Values
			status           int
			code, field, txt string
		}{
			{"the number for its id", form("phone_number_id", "+7 701 234 56 78"), 422, "phone_number_id_invalid", "phone_number_id", "ID номера телефона: это числовой ID"},
			{"no WABA", form("waba_id", ""), 422, "waba_id_required", "waba_id", "ID аккаунта WhatsApp Business обязателен"},
			{"no name", form("name", " "), 422, "name_invalid", "name", "Название: обязательно"},
			{"a token Meta refuses", form("access_token", "EAAG-wrong"), 422, "account_not_verified", "", "Meta не подтвердила токен доступа"},
		} {
			st, page := v.post("/channels", c.form)
			if st != c.status {
				t.Errorf("%s: %d", c.name, st)
			}
			refusedWith(t, page, c.code, c.field, c.txt)
			if !strings.Contains(page, `value="Продажи"`) && c.form.Get("name") == "Продажи" {
				t.Errorf("%s: the form lost what was typed", c.name)
			}
			if strings.Contains(page, c.form.Get("access_token")) {
				t.Errorf("%s: the token is shown back", c.name)
			}
		}
		if n := len(e.ChannelsByName(ws)); n != 0 {
			t.Fatalf("refusals made %d channels", n)
		}
		// Without the CSRF token: refused, nothing made.
		f := form()
		f.Del("csrf")
		if st, _ := v.post("/channels", f); st != http.StatusForbidden || len(e.ChannelsByName(ws)) != 0 {
			t.Fatalf("no csrf: %d", st)
		}
		if page = v.saved("/channels", form()); !strings.Contains(page, "Канал добавлен") {
			t.Fatalf("add:\n%.600s", page)
		}
		ch := e.ChannelsByName(ws)["Продажи"]
		if ch == nil || ch["state"] != "active" || ch["waba_id"] != apptest.WabaID {
			t.Fatalf("channel as the API shows it: %v", ch)
		}
		id := ch["id"].(string)
		// The same number again: the API's conflict, in Russian.
		st, page = v.post("/channels", form("name", "Ещё раз"))
		if st != http.StatusConflict {
			t.Errorf("duplicate: %d", st)
		}
		refusedWith(t, page, "channel_exists", "", "уже подключён")

		// A token Meta refuses does not replace the working one.
		st, page = v.post("/channels/"+id+"/token", url.Values{"csrf": {csrf}, "access_token": {"EAAG-wrong"}})
		if st != 422 {
			t.Errorf("bad token: %d", st)
		}
		refusedWith(t, page, "account_not_verified", "", "Meta не подтвердила")
		before := ch["updated_at"]
		if now := e.ChannelsByName(ws)["Продажи"]; now["updated_at"] != before || now["state"] != "active" {
			t.Errorf("a refused token changed the channel: %v", now)
		}
		if page = v.saved("/channels/"+id+"/token", url.Values{"csrf": {csrf}, "access_token": {apptest.WAToken}}); !strings.Contains(page, "Токен заменён") {
			t.Errorf("good token:\n%.400s", page)
		}

		// The dialog counter, its pause in the workspace's clock, and the
		// day's messages.
		if st, b := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"dialogs_per_hour_limit": 1, "timezone": "Asia/Almaty"}); st != 200 {
			t.Fatalf("limit: %d %v", st, b)
		}
		if _, err := e.Sim.SendWhatsAppText(t.Context(), apptest.PhoneNumberID, "77015550101", "Анна", "Здравствуйте!"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the customer's message stored", func() bool { return len(e.Messages(id)) == 1 })
		// A dialog is counted when the business answers.
		if st, b := e.Do("POST", "/api/v1/channels/"+id+"/messages", map[string]any{"to": "77015550101", "text": "Добрый день!"}); st != 202 {
			t.Fatalf("reply: %d %v", st, b)
		}
		var d map[string]any
		e.Eventually("the dialog counted", func() bool {
			d = e.ChannelsByName(ws)["Продажи"]["dialogs"].(map[string]any)
			return d["this_hour"] == float64(1)
		})
		paused, err := time.Parse(time.RFC3339Nano, fmt.Sprint(d["paused_until"]))
		if err != nil || d["this_hour"] != float64(1) {
			t.Fatalf("the API's counter: %v", d)
		}
		almaty, _ := time.LoadLocation("Asia/Almaty")
		_, page = v.get("/channels")
		row := page[strings.Index(page, `id="ch-`+id+`"`):]
		row = row[:strings.Index(row, "</tr>")]
		if !strings.Contains(row, "1 / 1") || !strings.Contains(row, "пауза до "+paused.In(almaty).Format("02.01.2006 15:04")) || !strings.Contains(row, `class="m24">2<`) {
			t.Errorf("the channel's row:\n%s", row)
		}

		// Another workspace's channel is not here.
		st, body := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Другая"})
		if st != 201 {
			t.Fatalf("workspace: %d %v", st, body)
		}
		other := body["id"].(string)
		e.Sim.AddWhatsAppNumber("555000111", apptest.WabaID, "+7 701 555 00 11", apptest.WAToken)
		st, body = e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Чужой", "workspace_id": other,
			"phone_number_id": "555000111", "waba_id": apptest.WabaID, "access_token": apptest.WAToken})
		if st != 201 {
			t.Fatalf("other channel: %d %v", st, body)
		}
		for _, path := range []string{"/channels/" + body["id"].(string) + "/disable", "/channels/" + body["id"].(string) + "/token"} {
			if st, _ := v.post(path, url.Values{"csrf": {csrf}, "access_token": {apptest.WAToken}}); st != http.StatusNotFound {
				t.Errorf("%s of another workspace: %d", path, st)
			}
		}
		if c := e.ChannelsByName(other)["Чужой"]; c["state"] != "active" {
			t.Errorf("another workspace's channel changed: %v", c)
		}

		// Disable.
		if page = v.saved("/channels/"+id+"/disable", url.Values{"csrf": {csrf}}); !strings.Contains(page, "Канал отключён") {
			t.Errorf("disable:\n%.400s", page)
		}
		if c := e.ChannelsByName(ws)["Продажи"]; c["state"] != "disabled" {
			t.Errorf("after disable: %v", c)
		}

		// Instagram: its own fields, its own refusals.
		igForm := url.Values{"csrf": {csrf}, "type": {"instagram"}, "name": {"Инста"}, "ig_user_id": {"@flowers"}, "page_id": {"1122334455"}, "access_token": {apptest.IGToken}}
		st, page = v.post("/channels", igForm)
		if st != 422 {
			t.Errorf("instagram by handle: %d", st)
		}
		refusedWith(t, page, "ig_user_id_invalid", "ig_user_id", "ID аккаунта Instagram обязателен")
		igForm.Set("ig_user_id", apptest.IGUserID)
		v.saved("/channels", igForm)
		if c := e.ChannelsByName(ws)["Инста"]; c == nil || c["ig_user_id"] != apptest.IGUserID || c["page_id"] != "1122334455" {
			t.Errorf("instagram channel: %v", c)
		}

		// A manager keeps Home and is refused here.
		m := newVisitor(t, e)
		m.login("manager@example.com", "manager password")
		if st, _ := m.get("/"); st != 200 {
			t.Errorf("manager home: %d", st)
		}
		_, home := m.get("/")
		if st, _ := m.get("/channels"); st != http.StatusForbidden {
			t.Errorf("manager channels page: %d", st)
		}
		if st, _ := m.post("/channels", url.Values{"csrf": {csrfOf(t, home)}, "type": {"instagram"}, "name": {"x"}, "ig_user_id": {apptest.IGUserID}, "access_token": {apptest.IGToken}}); st != http.StatusForbidden {
			t.Errorf("manager adds a channel: %d", st)
		}
		if len(e.ChannelsByName(ws)) != 2 {
			t.Error("a manager's post made a channel")
		}
	})
}

// accessCells reads an integration's matrix from the API as
// "user/channel=level[*]".
func accessCells(t *testing.T, e *apptest.Env, f *settingsFixture) []string {
	t.Helper()
	st, body := e.Do("GET", f.settingsPath, nil)
	if st != 200 {
		t.Fatalf("settings: %d %v", st, body)
	}
	return f.cells(t, body)
}

// The integration's settings page changes what the API shows, through
// the API's checks; refusals are named, translated and change nothing.
func TestCabinetIntegrationSettingsPage(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newSettingsFixture(t, e)
		if st, body := e.Do("POST", f.refreshPath, nil); st != 200 {
			t.Fatalf("refresh: %d %v", st, body)
		}
		addUser(t, e, f.ws, "owner@example.com", "owner", ownerPW)
		addUser(t, e, f.ws, "manager@example.com", "manager", "manager password")
		v := newVisitor(t, e)
		v.lang = "en"
		v.login("owner@example.com", ownerPW)
		st, page := v.get("/integrations")
		if st != 200 || !strings.Contains(page, `href="/integrations/`+f.integ+`"`) {
			t.Fatalf("integrations page: %d\n%.600s", st, page)
		}
		// CRMs by their names, not their type ids.
		if !strings.Contains(page, "<strong>Bitrix24</strong>") || !strings.Contains(page, "Connect amoCRM") || strings.Contains(page, "Connect amocrm") {
			t.Errorf("the integrations page names CRMs by type id:\n%s", page)
		}
		base := "/integrations/" + f.integ
		if _, emp := v.get("/employees"); !strings.Contains(emp, `href="`+base+`#access"`) {
			t.Error("the employees page does not lead to the integration's access matrix")
		}
		st, page = v.get(base)
		if st != 200 || !strings.Contains(page, "Продажи") || !strings.Contains(page, `name="lvl:27:`+f.wa+`"`) {
			t.Fatalf("settings page: %d\n%.600s", st, page)
		}
		// Bitrix24 by name; never configured access shows as open.
		if !strings.Contains(page, "<h1>Bitrix24") || !strings.Contains(page, "Who owns new leads") || !strings.Contains(page, `<option value="" selected>open (read and send)</option>`) ||
			strings.Contains(page, `value="none" selected`) {
			t.Errorf("settings page heading or open access:\n%s", page)
		}
		csrf := csrfOf(t, page)
		// The page's one form, as the browser would send it untouched.
		form := func() url.Values {
			t.Helper()
			_, page := v.get(base)
			return pageForm(t, page, "settings-all")
		}
		if f := form(); f.Get("csrf") != csrf || len(f["ch"]) != 2 {
			t.Fatalf("the page's form: %v", f)
		}

		// Access: user 27 sends in WhatsApp, reads Instagram; user 1 sends in
		// both with Instagram as the default.
		access := form()
		for k, val := range map[string]string{"lvl:27:" + f.wa: "send", "lvl:27:" + f.ig: "read", "lvl:1:" + f.wa: "send", "lvl:1:" + f.ig: "send", "def:1": f.ig} {
			access.Set(k, val)
		}
		if page = v.saved(base+"/save", access); !strings.Contains(page, "Settings saved") {
			t.Fatalf("access:\n%.600s", page)
		}
		want := "[1/a=send 1/b=send* 27/a=send* 27/b=read]"
		if got := strings.Join(accessCells(t, e, f), " "); "["+got+"]" != want {
			t.Fatalf("matrix after the page: %s, want %s", got, want)
		}
		// A level the matrix does not have: refused, named, nothing changed.
		bad := form()
		bad.Set("lvl:27:"+f.wa, "admin")
		st, page = v.post(base+"/save", bad)
		if st != 422 {
			t.Errorf("bad level: %d", st)
		}
		refusedWith(t, page, "access_level_invalid", "access[1].channels[\""+f.wa+"\"]", "the level is none, read, or read and send")
		if got := strings.Join(accessCells(t, e, f), " "); "["+got+"]" != want {
			t.Fatalf("a refused matrix changed it: %s", got)
		}
		// Without the CSRF token: refused, nothing changed.
		noCSRF := form()
		noCSRF.Del("csrf")
		noCSRF.Set("lvl:1:"+f.wa, "read")
		if st, _ := v.post(base+"/save", noCSRF); st != http.StatusForbidden {
			t.Errorf("no csrf: %d", st)
		}
		if got := strings.Join(accessCells(t, e, f), " "); "["+got+"]" != want {
			t.Fatalf("a CSRF-less post changed it: %s", got)
		}

		// Visibility and the alert: a refusal names notify_after_seconds and
		// shows every typed value back.
		general := form()
		general.Set("visibility", "own")
		general.Set("chat_admin_user_id", "1")
		general.Set("notify_after_seconds", "10")
		general.Set("name:"+f.wa, "typed name")
		st, page = v.post(base+"/save", general)
		if st != 422 {
			t.Errorf("notify 10: %d", st)
		}
		refusedWith(t, page, "notify_after_seconds_out_of_range", "notify_after_seconds", "from 30 to 86400")
		// Shown at the form's action; the script puts the page's own
		// address in the address bar, so a reload does not post again.
		if !strings.Contains(page, `data-self="`+base+`"`) {
			t.Error("the refused page does not give its own address")
		}
		if !strings.Contains(page, `name="notify_after_seconds" inputmode="numeric" value="10" class="bad"`) || !strings.Contains(page, `value="typed name"`) {
			t.Error("the refused values are not shown back, marked")
		}
		_, body := e.Do("GET", f.settingsPath, nil)
		if body["visibility"] != "all" || body["chat_admin_user_id"] != "" {
			t.Fatalf("a refused form changed settings: %v", body)
		}
		general.Set("notify_after_seconds", "600")
		general.Set("name:"+f.wa, "")
		v.saved(base+"/save", general)
		_, body = e.Do("GET", f.settingsPath, nil)
		if body["visibility"] != "own" || body["chat_admin_user_id"] != "1" || body["notify_after_seconds"] != float64(600) {
			t.Fatalf("settings after the page: %v", body)
		}

		// "None" for Instagram (the page's button sets the column to none).
		none := form()
		for _, u := range []string{"1", "27"} {
			none.Set("lvl:"+u+":"+f.ig, "none")
		}
		v.saved(base+"/save", none)
		if got := strings.Join(accessCells(t, e, f), " "); got != "1/a=send* 27/a=send*" {
			t.Fatalf("after none on Instagram: %s", got)
		}

		// The binding's owner policy: round robin needs someone.
		pol := form()
		pol.Set("name:"+f.wa, "WA")
		pol.Set("strategy:"+f.wa, "round_robin")
		pol.Set("on_repeat:"+f.wa, "new")
		pol.Set("mirror:"+f.wa, "hourly")
		st, page = v.post(base+"/save", pol)
		if st != 422 {
			t.Errorf("empty round robin: %d", st)
		}
		refusedWith(t, page, "owner_users_empty", "owner.users", "tick at least one employee")
		if !strings.Contains(page, `data-channel="`+f.wa+`"`) {
			t.Error("the refusal does not name the channel")
		}
		binding := func() map[string]any {
			_, in := e.Do("GET", f.integrationURL, nil)
			for _, b := range in["bindings"].([]any) {
				if m := b.(map[string]any); m["channel_id"] == f.wa {
					return m
				}
			}
			return nil
		}
		if b := binding(); b["owner"] != nil || b["mirror"] != "each" || b["name"] != nil {
			t.Fatalf("a refused policy changed the binding: %v", b)
		}
		pol.Set("owner:"+f.wa+":1", "on")
		pol.Set("weight:"+f.wa+":1", "3")
		pol.Set("owner:"+f.wa+":27", "on")
		v.saved(base+"/save", pol)
		b := binding()
		owner, _ := b["owner"].(map[string]any)
		if b["name"] != "WA" || b["mirror"] != "hourly" || b["on_repeat"] != "new" || owner["strategy"] != "round_robin" || len(owner["users"].([]any)) != 2 || b["entity"] != "lead" {
			t.Fatalf("binding after the page: %v", b)
		}

		// Phone numbers: the workspace's trunk 8 setting.
		_, w := e.Do("GET", "/api/v1/workspaces/"+f.ws, nil)
		was := w["phone_trunk8"].(bool)
		phone := form()
		if was {
			phone.Del("phone_trunk8")
		} else {
			phone.Set("phone_trunk8", "on")
		}
		v.saved(base+"/save", phone)
		if _, w = e.Do("GET", "/api/v1/workspaces/"+f.ws, nil); w["phone_trunk8"].(bool) == was {
			t.Errorf("trunk8 still %v", was)
		}
		if page = v.saved(base+"/refresh", form()); !strings.Contains(page, "Data refreshed") {
			t.Errorf("refresh:\n%.400s", page)
		}
		// Unbind Instagram: untick it.
		unbind := form()
		unbind.Del("bind:" + f.ig)
		v.saved(base+"/save", unbind)
		if _, in := e.Do("GET", f.integrationURL, nil); len(in["bindings"].([]any)) != 1 {
			t.Errorf("bindings after unbind: %v", in["bindings"])
		}
		// This CRM does not list its stages here: the unbound channel
		// cannot be ticked back on this page.
		rebind := form()
		if len(rebind["ch"]) != 1 {
			t.Errorf("the page offers an unbound channel of a CRM without stage lists: %v", rebind["ch"])
		}

		// A manager is refused; another workspace's owner finds nothing.
		m := newVisitor(t, e)
		m.login("manager@example.com", "manager password")
		_, home := m.get("/")
		if st, _ := m.get(base); st != http.StatusForbidden {
			t.Errorf("manager settings page: %d", st)
		}
		if st, _ := m.post(base+"/save", url.Values{"csrf": {csrfOf(t, home)}, "notify_after_seconds": {"900"}}); st != http.StatusForbidden {
			t.Errorf("manager save: %d", st)
		}
		_, ow := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Другая"})
		addUser(t, e, ow["id"].(string), "stranger@example.com", "owner", ownerPW)
		s := newVisitor(t, e)
		s.login("stranger@example.com", ownerPW)
		_, home = s.get("/")
		if st, _ := s.get(base); st != http.StatusNotFound {
			t.Errorf("another workspace's integration page: %d", st)
		}
		if st, _ := s.post(base+"/save", url.Values{"csrf": {csrfOf(t, home)}, "notify_after_seconds": {"900"}, "ch": {f.wa}}); st != http.StatusNotFound {
			t.Errorf("another workspace's save: %d", st)
		}
		if st, _ := s.post(base+"/delete", url.Values{"csrf": {csrfOf(t, home)}}); st != http.StatusNotFound {
			t.Errorf("another workspace's delete: %d", st)
		}
		if got := strings.Join(accessCells(t, e, f), " "); got != "1/a=send* 27/a=send*" {
			t.Fatalf("refused requests changed the matrix: %s", got)
		}
		if _, in := e.Do("GET", f.integrationURL, nil); len(in["bindings"].([]any)) != 1 {
			t.Errorf("a stranger unbound: %v", in["bindings"])
		}

		// needs_reauth: the page links to the provider's OAuth start,
		// which the owner's session opens (the API token is not needed).
		if err := e.App.Store.SetIntegrationState(t.Context(), f.integ, store.IntegrationNeedsReauth, "refresh token revoked"); err != nil {
			t.Fatal(err)
		}
		_, page = v.get("/integrations")
		link := regexp.MustCompile(`class="reauth" href="([^"]+)"`).FindStringSubmatch(page)
		if link == nil || !strings.HasPrefix(html.UnescapeString(link[1]), "/bitrix24/oauth/start?domain=") {
			t.Fatalf("no re-authorise link:\n%.1500s", page)
		}
		r, _ := v.do("GET", html.UnescapeString(link[1]), nil)
		if r.StatusCode != http.StatusFound || r.Header.Get("Location") == "" {
			t.Errorf("the owner's re-authorise link: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		// Connecting: a form per provider; a refusal is a page in both
		// languages, not the API's JSON.
		if !strings.Contains(page, `action="/bitrix24/oauth/start"`) || !strings.Contains(page, `action="/amocrm/oauth/start"`) {
			t.Errorf("no connect forms:\n%.1500s", page)
		}
		r, refused := v.do("GET", "/bitrix24/oauth/start?domain=not%20a%20host", nil)
		if r.StatusCode != 422 || !strings.Contains(refused, "Адрес CRM: только имя хоста") || !strings.Contains(refused, "The CRM&#39;s address: the host name only") {
			t.Errorf("a bad domain from the cabinet: %d\n%s", r.StatusCode, refused[strings.Index(refused, "<main>"):])
		}
		if r, body := e.Do("GET", "/bitrix24/oauth/start?domain=not%20a%20host", nil); r != 422 || errCode(body) != "domain_invalid" {
			t.Errorf("the API's answer changed: %d %v", r, body)
		}
		if r, _ := m.do("GET", html.UnescapeString(link[1]), nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("a manager's re-authorise: %d", r.StatusCode)
		}
		if r, _ := newVisitor(t, e).do("GET", html.UnescapeString(link[1]), nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("re-authorise with neither token nor session: %d", r.StatusCode)
		}

		// Delete: uninstalled, its bindings gone, its users kept.
		if page = v.saved(base+"/delete", form()); !strings.Contains(page, "Integration deleted") {
			t.Errorf("delete:\n%.400s", page)
		}
		if _, in := e.Do("GET", f.integrationURL, nil); in["state"] != "uninstalled" || len(in["bindings"].([]any)) != 0 {
			t.Errorf("after delete: %v %v", in["state"], in["bindings"])
		}
		if _, set := e.Do("GET", f.settingsPath, nil); len(set["users"].([]any)) == 0 || set["visibility"] != "own" {
			t.Errorf("delete lost the users or settings: %v", set)
		}
	})
}

// TestCabinetChannelsPageVerifyTokenUnset: with no verify token set the
// page says what to set, instead of an empty box to copy into Meta.
func TestCabinetChannelsPageVerifyTokenUnset(t *testing.T) {
	opts := apptest.Options{Config: func(c *config.Config) { c.MetaVerifyToken = "" }}
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		v := newVisitor(t, e)
		v.lang = "ru"
		if st := v.login("owner@example.com", ownerPW); st != http.StatusSeeOther {
			t.Fatalf("sign in: %d", st)
		}
		st, page := v.get("/channels")
		if st != http.StatusOK || strings.Contains(page, `id="verify-token"`) || !strings.Contains(page, `id="verify-token-unset"`) ||
			!strings.Contains(page, "SWITCHBOARD_META_VERIFY_TOKEN") {
			t.Fatalf("channels page without a verify token: %d\n%s", st, page)
		}
	})
}
