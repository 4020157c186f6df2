package app_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

// TestCabinetWorkspaceSettings: an owner sets the workspace's name, time
// zone, phone reading and dialog limit on /workspace; a refused value is
// named in the page's language with what was typed kept; the form needs
// its CSRF token; a manager may not open it; another workspace is left as
// it was.
func TestCabinetWorkspaceSettings(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Соседи", "timezone": "Europe/Moscow"})
		otherWS := other["id"].(string)
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		addUser(t, e, ws, "manager@example.com", "manager", ownerPW)

		v := newVisitor(t, e)
		if st := v.login("owner@example.com", ownerPW); st != http.StatusSeeOther {
			t.Fatalf("owner sign-in: %d", st)
		}
		st, page := v.get("/workspace")
		if st != http.StatusOK || !strings.Contains(page, "Настройки рабочего пространства") ||
			!strings.Contains(page, `<option value="UTC" selected>`) || !strings.Contains(page, `<option value="RU" selected>RU · Россия</option>`) ||
			!strings.Contains(page, `id="ws-trunk8" type="checkbox" name="phone_trunk8" value="1" checked`) {
			t.Fatalf("settings page: %d\n%.3000s", st, page)
		}
		csrf := csrfOf(t, page)
		form := func(tz, region, limit string) url.Values {
			return url.Values{"csrf": {csrf}, "name": {"  Продажи Алматы "}, "timezone": {tz}, "phone_region": {region},
				"dialogs_per_hour_limit": {limit}}
		}

		// Refusals: named in Russian, what was typed kept, nothing saved.
		for _, c := range []struct {
			form        url.Values
			field, text string
		}{
			{form("Mars/Olympus", "KZ", "30"), "timezone", "Выберите часовой пояс из списка."},
			{form("Local", "KZ", "30"), "timezone", "Выберите часовой пояс из списка."},
			{form("Asia/Almaty", "XX", "30"), "phone_region", "Выберите страну из списка."},
			{form("Asia/Almaty", "KZ", "2.5"), "dialogs_per_hour_limit", "Лимит диалогов — целое число от 0 до " + strconv.Itoa(store.MaxDialogsPerHour) + "."},
			{form("Asia/Almaty", "KZ", "-1"), "dialogs_per_hour_limit", "Лимит диалогов"},
		} {
			st, page := v.post("/workspace", c.form)
			if st != http.StatusUnprocessableEntity || !strings.Contains(page, `data-field="`+c.field+`"`) || !strings.Contains(page, c.text) {
				t.Fatalf("%v: %d\n%.3000s", c.form, st, page)
			}
			if !strings.Contains(page, `value="Продажи Алматы"`) && !strings.Contains(page, `value="  Продажи Алматы "`) {
				t.Fatalf("%v: the typed name is not kept:\n%.3000s", c.form, page)
			}
		}
		if st, _ := v.post("/workspace", url.Values{"name": {"X"}, "timezone": {"UTC"}, "phone_region": {"RU"}, "dialogs_per_hour_limit": {"0"}}); st != http.StatusForbidden {
			t.Fatalf("without the CSRF token: %d", st)
		}
		w, err := e.App.Store.GetWorkspace(t.Context(), store.All, ws)
		if err != nil || w.Timezone != "UTC" || w.Name == "Продажи Алматы" || w.PhoneRegion != "RU" || !w.PhoneTrunk8 || w.DialogsPerHourLimit != 0 {
			t.Fatalf("refused forms changed the workspace: %+v %v", w, err)
		}

		// Saved: the trunk 8 box left unticked means off.
		r, _ := v.do("POST", "/workspace", form("Asia/Almaty", "kz", "30"))
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/workspace?done=saved" {
			t.Fatalf("save: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		w, err = e.App.Store.GetWorkspace(t.Context(), store.All, ws)
		if err != nil || w.Name != "Продажи Алматы" || w.Timezone != "Asia/Almaty" || w.PhoneTrunk8 || w.PhoneRegion != "KZ" || w.DialogsPerHourLimit != 30 {
			t.Fatalf("after saving: %+v %v", w, err)
		}
		st, page = v.get("/workspace?done=saved")
		if st != http.StatusOK || !strings.Contains(page, "Настройки сохранены.") || !strings.Contains(page, `<option value="Asia/Almaty" selected>`) ||
			strings.Contains(page, `name="phone_trunk8" value="1" checked`) || !strings.Contains(page, `<a href="/workspace#ws-timezone">Asia/Almaty</a>`) {
			t.Fatalf("page after saving:\n%.4000s", page)
		}
		o, err := e.App.Store.GetWorkspace(t.Context(), store.All, otherWS)
		if err != nil || o.Name != "Соседи" || o.Timezone != "Europe/Moscow" || o.DialogsPerHourLimit != 0 {
			t.Fatalf("the other workspace changed: %+v %v", o, err)
		}

		// In English, the same refusal in English.
		v.lang = "en"
		if st, _ := v.post("/language", url.Values{"csrf": {csrf}, "lang": {"en"}, "back": {"/workspace"}}); st != http.StatusSeeOther {
			t.Fatalf("switch to English: %d", st)
		}
		st, page = v.post("/workspace", form("Mars/Olympus", "KZ", "30"))
		if st != http.StatusUnprocessableEntity || !strings.Contains(page, "Choose a time zone from the list.") || !strings.Contains(page, "Workspace settings") {
			t.Fatalf("English refusal: %d\n%.2000s", st, page)
		}

		m := newVisitor(t, e)
		if st := m.login("manager@example.com", ownerPW); st != http.StatusSeeOther {
			t.Fatalf("manager sign-in: %d", st)
		}
		if st, _ := m.get("/workspace"); st != http.StatusForbidden {
			t.Fatalf("manager opened the settings: %d", st)
		}
		if _, page := m.get("/"); strings.Contains(page, `href="/workspace`) {
			t.Fatalf("a manager's page links to the settings")
		}
	})
}
