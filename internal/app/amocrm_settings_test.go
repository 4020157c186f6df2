package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

// settingsTicket buys a settings ticket with a fresh disposable token of
// user.
func settingsTicket(t *testing.T, e *apptest.Env, user int) string {
	t.Helper()
	st, body, _ := widgetTicket(t, e, amoToken(t, e, user), "settings")
	if st != http.StatusOK {
		t.Fatalf("settings ticket: %d %v", st, body)
	}
	return body["ticket"].(string)
}

// pageCall is a request to the settings page as amoCRM's iframe makes
// it: no admin token, no redirects followed.
func pageCall(t *testing.T, e *apptest.Env, method, path string, form url.Values) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, e.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// openSettings opens the page with a ticket of user and returns the page
// and its session.
func openSettings(t *testing.T, e *apptest.Env, user int, lang string) (string, string) {
	t.Helper()
	st, page, h := pageCall(t, e, "GET", "/amocrm/settings?"+url.Values{"ticket": {settingsTicket(t, e, user)}, "lang": {lang}}.Encode(), nil)
	if st != http.StatusOK {
		t.Fatalf("settings page: %d\n%.800s", st, page)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors "+e.AmoURL) {
		t.Errorf("the page may be framed by others: %s", csp)
	}
	return page, sessOf(t, page)
}

// settingsForm is the whole form as the page sends it for one bound
// channel in round robin, with the rest of the settings.
func amoSettingsForm(sess, ch string) url.Values {
	return url.Values{"sess": {sess}, "lang": {"ru"}, "form": {"all"}, "ch": {ch}, "bind:" + ch: {"on"},
		"stage:" + ch: {amoSecond + "/" + amoSecondSt}, "name:" + ch: {"WA продажи"}, "strategy:" + ch: {"round_robin"},
		"owner:" + ch + ":9000001": {"on"}, "weight:" + ch + ":9000001": {"3"},
		"owner:" + ch + ":9000002": {"on"}, "weight:" + ch + ":9000002": {"1"},
		"on_repeat:" + ch: {"new"}, "mirror:" + ch: {"hourly"},
		"visibility": {"own"}, "chat_admin_user_id": {"9000001"}, "notify_after_seconds": {"600"}, "phone_trunk8": {"on"}}
}

// amoSnapshot is what the page may change, as the admin API shows it.
func amoSnapshot(t *testing.T, e *apptest.Env, id, ws string) string {
	t.Helper()
	_, in := e.Do("GET", "/api/v1/integrations/"+id, nil)
	_, set := e.Do("GET", "/api/v1/integrations/"+id+"/settings", nil)
	_, w := e.Do("GET", "/api/v1/workspaces/"+ws, nil)
	delete(set, "users")
	return string(mustJSON(t, []any{in["state"], in["bindings"], set, w["phone_trunk8"]}))
}

// TestAmoCRMSettingsPage: amoCRM's advanced_settings iframe shows the
// one settings form with the account's users and pipelines; an admin's
// Save binds and writes everything through the API's checks, a refusal
// is named in the page's language and changes nothing, a manager reads
// only, and sessions neither cross accounts nor outlive a ticket.
func TestAmoCRMSettingsPage(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, ws := installAmoWidget(t, e)
		ch := createWAIn(t, e, ws)
		ig := e.CreateInstagram()

		page, sess := openSettings(t, e, amoAdminUser, "ru")
		for _, want := range []string{"Анна Админова", "Иван Менеджеров", "Продажи → Первичный контакт", "Instagram → Новая заявка",
			`name="bind:` + ch + `"`, `id="save"`, `id="refresh"`, `id="delete"`, "Сохранить настройки", `<html lang="ru">`} {
			if !strings.Contains(page, want) {
				t.Errorf("the page lacks %q", want)
			}
		}
		// amoCRM by its name; a channel not bound says so.
		if !strings.Contains(page, "<h1>amoCRM · ") || strings.Contains(page, "<h1>amocrm") {
			t.Errorf("the heading does not name amoCRM:\n%.1500s", page)
		}
		if !strings.Contains(page, "не подключён: отметьте, чтобы подключить") || strings.Contains(page, "— подключён к интеграции") {
			t.Errorf("an unbound channel is labelled as bound")
		}
		// Closing and unsorted statuses are not offered as entry stages.
		for _, not := range []string{"/142\"", "/143\"", "Неразобранное"} {
			if strings.Contains(page, not) {
				t.Errorf("the page offers %s", not)
			}
		}
		before := amoSnapshot(t, e, id, ws)
		// The page sent as it is changes nothing (access stays open).
		if st, _, _ := pageCall(t, e, "POST", "/amocrm/settings/save", pageForm(t, page, "settings-all")); st != http.StatusSeeOther {
			t.Fatalf("untouched save: %d", st)
		}
		if got := amoSnapshot(t, e, id, ws); got != before {
			t.Fatalf("an untouched save changed something:\n%s\n%s", before, got)
		}

		// Refused: named, in the page's language, nothing changed.
		for _, c := range []struct {
			name, field, value, code, text string
		}{
			{"weight 0", "weight:" + ch + ":9000001", "0", "owner_weight_out_of_range", "Вес сотрудника"},
			{"stage 142", "stage:" + ch, amoMain + "/142", "stage_closed", "сразу закрыта"},
			{"alien stage", "stage:" + ch, amoMain + "/" + amoSecondSt, "stage_unknown", "нет в выбранной воронке"},
			{"notify", "notify_after_seconds", "5", "notify_after_seconds_out_of_range", "от 30 до 86400"},
			{"chat admin", "chat_admin_user_id", "777", "chat_admin_user_unknown", "Администратор чатов"},
		} {
			f := amoSettingsForm(sess, ch)
			f.Set(c.field, c.value)
			st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f)
			if st != http.StatusUnprocessableEntity || !strings.Contains(page, `data-code="`+c.code+`"`) || !strings.Contains(page, c.text) {
				t.Errorf("%s: %d\n%.3000s", c.name, st, page[strings.Index(page, "<main>"):])
			}
			// The refused values are shown back, to fix the one named.
			if !strings.Contains(page, `value="WA продажи"`) {
				t.Errorf("%s: the typed name is lost", c.name)
			}
			// The page's script puts its own address (a GET) in the
			// address bar, so that a reload does not post again.
			if !strings.Contains(page, `data-self="/amocrm/settings?lang=ru&amp;sess=`) {
				t.Errorf("%s: the refused page does not give its own address", c.name)
			}
			if got := amoSnapshot(t, e, id, ws); got != before {
				t.Fatalf("%s changed something:\n%s\n%s", c.name, before, got)
			}
		}
		// Two channels, the second refused: the first is not bound either
		// (every bind is checked before any is written).
		f2 := amoSettingsForm(sess, ch)
		f2.Add("ch", ig)
		f2.Set("bind:"+ig, "on")
		f2.Set("stage:"+ig, amoMain+"/142")
		if st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f2); st != 422 || !strings.Contains(page, `data-channel="`+ig+`"`) || !strings.Contains(page, `data-code="stage_closed"`) {
			t.Errorf("second channel refused: %d", st)
		}
		if got := amoSnapshot(t, e, id, ws); got != before {
			t.Fatalf("a refused second channel left the first bound:\n%s\n%s", before, got)
		}
		// In English when the page is.
		f := amoSettingsForm(sess, ch)
		f.Set("lang", "en")
		f.Set("weight:"+ch+":9000001", "0")
		if st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f); st != 422 || !strings.Contains(page, "Employee&#39;s weight: a whole number from 1 to 100") {
			t.Errorf("english refusal: %d", st)
		}
		// amoCRM's records are leads in English refusals too.
		f = amoSettingsForm(sess, ch)
		f.Set("lang", "en")
		f.Set("stage:"+ch, amoMain+"/142")
		if st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f); st != 422 || !strings.Contains(page, "a lead entering") {
			t.Errorf("english stage refusal: %d", st)
		}

		// A manager sees the settings read-only, and cannot post.
		mpage, msess := openSettings(t, e, amoManagerUser, "ru")
		if !strings.Contains(mpage, `id="readonly"`) || strings.Contains(mpage, `id="save"`) || !strings.Contains(mpage, "fieldset class=\"whole\" disabled") {
			t.Errorf("the manager's page is not read-only:\n%.2000s", mpage)
		}
		for _, action := range []string{"save", "refresh", "delete"} {
			st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/"+action, amoSettingsForm(msess, ch))
			if st != http.StatusForbidden || !strings.Contains(page, "только администратор") {
				t.Errorf("manager's %s: %d", action, st)
			}
		}
		if got := amoSnapshot(t, e, id, ws); got != before {
			t.Fatalf("a manager's post changed something")
		}

		if st, _, _ := pageCall(t, e, "POST", "/amocrm/settings/everything", amoSettingsForm(sess, ch)); st != http.StatusNotFound {
			t.Errorf("an unknown button: %d", st)
		}

		// The admin saves: everything at once.
		st, _, h := pageCall(t, e, "POST", "/amocrm/settings/save", amoSettingsForm(sess, ch))
		if st != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "saved=save") {
			t.Fatalf("save: %d %v", st, h)
		}
		_, set := e.Do("GET", "/api/v1/integrations/"+id+"/settings", nil)
		if set["visibility"] != "own" || set["chat_admin_user_id"] != "9000001" || set["notify_after_seconds"] != float64(600) {
			t.Errorf("settings after save: %v", set)
		}
		_, in := e.Do("GET", "/api/v1/integrations/"+id, nil)
		bs := in["bindings"].([]any)
		if len(bs) != 1 {
			t.Fatalf("bindings: %v", bs)
		}
		b := bs[0].(map[string]any)
		owner, _ := b["owner"].(map[string]any)
		if b["category_id"] != amoSecond || b["stage_id"] != amoSecondSt || b["name"] != "WA продажи" || b["mirror"] != "hourly" || b["on_repeat"] != "new" ||
			owner["strategy"] != "round_robin" || len(owner["users"].([]any)) != 2 {
			t.Errorf("binding after save: %v", b)
		}
		if _, w := e.Do("GET", "/api/v1/workspaces/"+ws, nil); w["phone_trunk8"] != true {
			t.Errorf("trunk8 after save: %v", w["phone_trunk8"])
		}
		// The redirect shows it, under a renewed session.
		st, page, _ = pageCall(t, e, "GET", h.Get("Location"), nil)
		if st != 200 || !strings.Contains(page, "Настройки сохранены") || !strings.Contains(page, `value="`+amoSecond+`/`+amoSecondSt+`" selected`) {
			t.Errorf("after save: %d", st)
		}
		if strings.Contains(page, "data-self=") {
			t.Errorf("a page at its own address rewrites the address bar")
		}
		// Access was never configured: the matrix shows everyone's
		// effective level, open, not "none" next to a hint saying all
		// may write; sent untouched, it stays open.
		if strings.Count(page, `<option value="" selected>открыт (чтение и отправка)</option>`) != 3 || strings.Contains(page, `value="none" selected`) ||
			!strings.Contains(page, "— подключён к интеграции") {
			t.Errorf("open access in the matrix:\n%s", page[strings.Index(page, `id="access"`):])
		}
		if st, _, _ := pageCall(t, e, "POST", "/amocrm/settings/save", pageForm(t, page, "settings-all")); st != http.StatusSeeOther {
			t.Fatalf("untouched save with open cells: %d", st)
		}
		if _, set := e.Do("GET", "/api/v1/integrations/"+id+"/settings", nil); set["access_mode"] == "matrix" {
			t.Errorf("an untouched open matrix switched to the matrix: %v", set)
		}
		// English: amoCRM's records are leads.
		st, page, _ = pageCall(t, e, "GET", "/amocrm/settings?"+url.Values{"sess": {sessOf(t, page)}, "lang": {"en"}}.Encode(), nil)
		if st != 200 || !strings.Contains(page, "Pipeline and stage of new leads") || !strings.Contains(page, "Who owns new leads") ||
			!strings.Contains(page, "customer&#39;s last lead") || strings.Contains(page, "deals") || !strings.Contains(page, "open (read and send)") {
			t.Errorf("English page: %d\n%s", st, page)
		}
		// The matrix: user 9000002 reads only; the default follows send.
		f = amoSettingsForm(sess, ch)
		f.Set("lvl:9000001:"+ch, "send")
		f.Set("lvl:9000002:"+ch, "read")
		if st, _, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f); st != http.StatusSeeOther {
			t.Fatalf("matrix save: %d", st)
		}
		_, set = e.Do("GET", "/api/v1/integrations/"+id+"/settings", nil)
		if set["access_mode"] != "matrix" || len(set["access"].([]any)) != 2 {
			t.Errorf("access after save: %v", set)
		}
		// Saving again without touching the matrix keeps it (and does not
		// switch an open integration to the matrix).
		before = amoSnapshot(t, e, id, ws)

		// Sessions: a replayed ticket, a forged or foreign-purpose session,
		// none at all: 401, and the page shows nothing of the account.
		ticket := settingsTicket(t, e, amoAdminUser)
		if st, _, _ := pageCall(t, e, "GET", "/amocrm/settings?ticket="+ticket, nil); st != 200 {
			t.Fatalf("fresh ticket: %d", st)
		}
		_, cardTicket, _ := widgetTicket(t, e, amoToken(t, e, amoAdminUser), "card")
		expired := settingsTicket(t, e, amoAdminUser)
		if err := e.App.DB.Gorm.Table("oauth_states").Where("state = ?", expired).Update("expires_at", time.Now().Add(-time.Minute)).Error; err != nil {
			t.Fatal(err)
		}
		forged := sess[:len(sess)-3] + "AAA"
		for name, q := range map[string]string{
			"replayed ticket": "ticket=" + ticket, "card ticket": "ticket=" + cardTicket["ticket"].(string), "expired ticket": "ticket=" + expired,
			"forged sess": "sess=" + url.QueryEscape(forged), "nothing": "", "made-up ticket": "ticket=abc",
		} {
			st, page, _ := pageCall(t, e, "GET", "/amocrm/settings?"+q, nil)
			if st != http.StatusUnauthorized || strings.Contains(page, "Анна") || strings.Contains(page, "Продажи") {
				t.Errorf("%s: %d\n%.500s", name, st, page)
			}
		}
		f = amoSettingsForm(forged, ch)
		f.Set("notify_after_seconds", "900")
		if st, _, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f); st != http.StatusUnauthorized {
			t.Errorf("forged sess post: %d", st)
		}
		// A session in the address of a POST is not read: a link cannot save.
		if st, _, _ := pageCall(t, e, "POST", "/amocrm/settings/save?sess="+url.QueryEscape(sess), url.Values{"notify_after_seconds": {"900"}}); st != http.StatusUnauthorized {
			t.Errorf("sess in a POST's address: %d", st)
		}
		if got := amoSnapshot(t, e, id, ws); got != before {
			t.Fatalf("refused sessions changed something")
		}

		// Another account's admin acts on their own account only: this
		// account's channel is not theirs to bind.
		second := installSecondAmoAccount(t, e)
		var id2 string
		e.Eventually("second account recorded", func() bool {
			for _, in := range amoIntegrations(t, e) {
				if in["id"] != id && in["state"] == "active" {
					id2 = in["id"].(string)
				}
			}
			return id2 != ""
		})
		tok2, _, err := e.Amo.DisposableToken(second.ID, amoAdminUser, e.URL)
		if err != nil {
			t.Fatal(err)
		}
		st2, tb, _ := widgetTicket(t, e, tok2, "settings")
		if st2 != 200 {
			t.Fatalf("second ticket: %d %v", st2, tb)
		}
		st, page2, _ := pageCall(t, e, "GET", "/amocrm/settings?ticket="+tb["ticket"].(string), nil)
		if st != 200 || strings.Contains(page2, ch) || strings.Contains(page2, "WA продажи") {
			t.Fatalf("the second account's page shows the first's channel: %d", st)
		}
		f = amoSettingsForm(sessOf(t, page2), ch)
		if st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f); st != http.StatusNotFound || !strings.Contains(page, "channel_not_found") {
			t.Errorf("the second account binds the first's channel: %d", st)
		}
		f.Del("ch")
		f.Set("visibility", "all")
		if st, _, _ := pageCall(t, e, "POST", "/amocrm/settings/save", f); st != http.StatusSeeOther {
			t.Errorf("the second account's own save: %d", st)
		}
		if _, set2 := e.Do("GET", "/api/v1/integrations/"+id2+"/settings", nil); set2["visibility"] != "all" {
			t.Errorf("the second account's settings: %v", set2)
		}
		if got := amoSnapshot(t, e, id, ws); got != before {
			t.Fatalf("the second account's session changed the first:\n%s\n%s", before, got)
		}

		// Refresh reads amoCRM's users again.
		e.Amo.SetUserActive(amoAccount, 9000002, false)
		st, _, h = pageCall(t, e, "POST", "/amocrm/settings/refresh", url.Values{"sess": {sess}, "lang": {"en"}})
		if st != http.StatusSeeOther {
			t.Fatalf("refresh: %d", st)
		}
		users, _ := e.App.Store.CRMUsers(context.Background(), id)
		for _, u := range users {
			if u.UserID == "9000002" && u.Active {
				t.Error("refresh did not read the deactivated user")
			}
		}
		if _, page, _ := pageCall(t, e, "GET", h.Get("Location"), nil); !strings.Contains(page, "Data refreshed from the CRM") || !strings.Contains(page, `<html lang="en">`) {
			t.Errorf("after refresh:\n%.1000s", page)
		}

		// Delete: uninstalled as the disable hook does; users kept.
		st, page, _ = pageCall(t, e, "POST", "/amocrm/settings/delete", url.Values{"sess": {sess}})
		if st != 200 || !strings.Contains(page, "Интеграция удалена") {
			t.Fatalf("delete: %d\n%s", st, page)
		}
		in2, _ := storedAmo(t, e, id)
		if in2.State != store.IntegrationUninstalled {
			t.Errorf("state after delete: %s", in2.State)
		}
		if _, in := e.Do("GET", "/api/v1/integrations/"+id, nil); len(in["bindings"].([]any)) != 0 {
			t.Errorf("bindings after delete: %v", in["bindings"])
		}
		if users, _ := e.App.Store.CRMUsers(context.Background(), id); len(users) != 3 {
			t.Errorf("users after delete: %d", len(users))
		}
		if st, _, _ := pageCall(t, e, "GET", "/amocrm/settings?sess="+url.QueryEscape(sess), nil); st != http.StatusNotFound {
			t.Errorf("the deleted integration's page: %d", st)
		}
	})
}
