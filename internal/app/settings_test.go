package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/store"
)

// settingsFixture is a portal with a WhatsApp and an Instagram channel
// bound in CRM mode, and a third channel of the workspace left unbound.
type settingsFixture struct {
	integ, ws      string
	wa, ig, loose  string
	settingsPath   string
	bulkPath       string
	refreshPath    string
	integrationURL string
}

func newSettingsFixture(t *testing.T, e *apptest.Env) *settingsFixture {
	t.Helper()
	integ, ws := e.InstallBitrix24()
	f := &settingsFixture{integ: integ, ws: ws, wa: createWAIn(t, e, ws),
		settingsPath: "/api/v1/integrations/" + integ + "/settings", bulkPath: "/api/v1/integrations/" + integ + "/access/bulk",
		refreshPath: "/api/v1/integrations/" + integ + "/refresh", integrationURL: "/api/v1/integrations/" + integ}
	st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "Instagram", "workspace_id": ws,
		"ig_user_id": apptest.IGUserID, "page_id": "1122334455", "access_token": apptest.IGToken})
	if st != http.StatusCreated {
		t.Fatalf("instagram channel: %d %v", st, body)
	}
	f.ig = body["id"].(string)
	e.Sim.AddWhatsAppNumber("555000111", apptest.WabaID, "+7 701 555 00 11", apptest.WAToken)
	st, body = e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Склад", "workspace_id": ws,
		"phone_number_id": "555000111", "waba_id": apptest.WabaID, "access_token": apptest.WAToken})
	if st != http.StatusCreated {
		t.Fatalf("unbound channel: %d %v", st, body)
	}
	f.loose = body["id"].(string)
	for _, ch := range []string{f.wa, f.ig} {
		if st, body := e.Do("PUT", f.integrationURL+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
			t.Fatalf("bind %s: %d %v", ch, st, body)
		}
	}
	return f
}

// access reads the settings' matrix as "user/channel=level[*]" cells, the
// channels named a (WhatsApp) and b (Instagram).
func (f *settingsFixture) cells(t *testing.T, body map[string]any) []string {
	t.Helper()
	name := map[string]string{f.wa: "a", f.ig: "b", f.loose: "loose"}
	out := []string{}
	rows, _ := body["access"].([]any)
	for _, r := range rows {
		m := r.(map[string]any)
		chs := m["channels"].(map[string]any)
		keys := make([]string, 0, len(chs))
		for ch := range chs {
			keys = append(keys, ch)
		}
		// a before b
		if len(keys) == 2 && name[keys[0]] > name[keys[1]] {
			keys[0], keys[1] = keys[1], keys[0]
		}
		for _, ch := range keys {
			c := fmt.Sprintf("%s/%s=%s", m["user_id"], name[ch], chs[ch])
			if m["default_channel_id"] == ch {
				c += "*"
			}
			out = append(out, c)
		}
	}
	return out
}

func usersOf(body map[string]any) map[string]bool {
	out := map[string]bool{}
	us, _ := body["users"].([]any)
	for _, u := range us {
		m := u.(map[string]any)
		out[m["user_id"].(string)+" "+m["name"].(string)] = m["active"].(bool)
	}
	return out
}

func TestIntegrationSettingsAPI(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newSettingsFixture(t, e)
		st, body := e.Do("GET", f.settingsPath, nil)
		if st != http.StatusOK || body["access_mode"] != "open" || body["visibility"] != "all" || body["notify_after_seconds"] != float64(300) ||
			len(body["users"].([]any)) != 0 || len(body["access"].([]any)) != 0 || body["chat_admin_user_id"] != "" {
			t.Fatalf("defaults: %d %v", st, body)
		}

		// Refresh reads every page of user.get (52 users: two pages) and
		// keeps a deactivated user, inactive.
		for id := 100; id < 150; id++ {
			if err := e.B24.PutUser(apptest.B24MemberID, b24sim.User{ID: id, Name: "Сотрудник", LastName: strconv.Itoa(id)}); err != nil {
				t.Fatal(err)
			}
		}
		if st, body = e.Do("POST", f.refreshPath, nil); st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, body)
		}
		users := usersOf(body)
		if len(users) != 52 || !users["1 Ivan Petrov"] || !users["27 Olga Ivanova"] || !users["149 Сотрудник 149"] {
			t.Fatalf("users after refresh: %d %v", len(users), users)
		}
		if err := e.B24.SetUserActive(apptest.B24MemberID, 27, false); err != nil {
			t.Fatal(err)
		}
		if err := e.B24.PutUser(apptest.B24MemberID, b24sim.User{ID: 149, Name: "Пётр", LastName: "Сидоров", Email: "p@example.com"}); err != nil {
			t.Fatal(err)
		}
		_, body = e.Do("POST", f.refreshPath, nil)
		if users = usersOf(body); users["27 Olga Ivanova"] || !users["149 Пётр Сидоров"] || len(users) != 52 {
			t.Fatalf("deactivated user still active, or rename missed: %v", users)
		}
		if err := e.B24.SetUserActive(apptest.B24MemberID, 27, true); err != nil {
			t.Fatal(err)
		}
		e.Do("POST", f.refreshPath, nil)

		// A matrix: 27 sends on a and reads b (a is its default, the only
		// send); 1 sends on both and names b.
		st, body = e.Do("PUT", f.settingsPath, map[string]any{"access": []map[string]any{
			{"user_id": "27", "channels": map[string]string{f.wa: "send", f.ig: "read"}},
			{"user_id": "1", "channels": map[string]string{f.wa: "send", f.ig: "send"}, "default_channel_id": f.ig},
		}, "visibility": "own", "chat_admin_user_id": "1", "notify_after_seconds": 600})
		want := []string{"1/a=send", "1/b=send*", "27/a=send*", "27/b=read"}
		if st != http.StatusOK || !reflect.DeepEqual(f.cells(t, body), want) || body["access_mode"] != "matrix" ||
			body["visibility"] != "own" || body["chat_admin_user_id"] != "1" || body["notify_after_seconds"] != float64(600) {
			t.Fatalf("put: %d %v %v", st, f.cells(t, body), body)
		}
		// Moving 1's default to a clears it on b. Other fields stay.
		_, body = e.Do("PUT", f.settingsPath, map[string]any{"access": []map[string]any{
			{"user_id": "27", "channels": map[string]string{f.wa: "send", f.ig: "read"}},
			{"user_id": "1", "channels": map[string]string{f.wa: "send", f.ig: "send"}, "default_channel_id": f.wa},
		}})
		if got := f.cells(t, body); !reflect.DeepEqual(got, []string{"1/a=send*", "1/b=send", "27/a=send*", "27/b=read"}) || body["visibility"] != "own" {
			t.Fatalf("default moved: %v %v", got, body)
		}
		// A GET's document goes back as it is (users included, ignored).
		_, got := e.Do("GET", f.settingsPath, nil)
		if st, back := e.Do("PUT", f.settingsPath, got); st != http.StatusOK || !reflect.DeepEqual(f.cells(t, back), f.cells(t, got)) {
			t.Fatalf("round trip: %d %v", st, back)
		}

		// Bulk: everyone active gets read on b (nobody loses send).
		st, body = e.Do("POST", f.bulkPath, map[string]any{"op": "add_all", "channel_id": f.ig, "level": "read"})
		if st != http.StatusOK || len(f.cells(t, body)) != 4+50 {
			t.Fatalf("add_all read on b: %d %d cells", st, len(f.cells(t, body)))
		}
		if c := f.cells(t, body); c[0] != "1/a=send*" || c[1] != "1/b=send" {
			t.Fatalf("add_all lowered a send: %v", c[:4])
		}
		// Remove everything on a: 1 keeps b (send) and it becomes the
		// default; 27 keeps read on b, no default.
		_, body = e.Do("POST", f.bulkPath, map[string]any{"op": "remove_all", "channel_id": f.wa})
		if c := f.cells(t, body); c[0] != "1/b=send*" || !strs(c).has("27/b=read") || strs(c).has("27/a=send*") {
			t.Fatalf("remove_all on a: %v", c)
		}
		// Remove all: nobody has access, and the matrix still applies.
		_, body = e.Do("POST", f.bulkPath, map[string]any{"op": "remove_all"})
		if len(f.cells(t, body)) != 0 || body["access_mode"] != "matrix" {
			t.Fatalf("remove_all: %v", body)
		}
		// Opening again.
		_, body = e.Do("PUT", f.settingsPath, map[string]any{"access_mode": "open"})
		if body["access_mode"] != "open" {
			t.Fatalf("open: %v", body)
		}
	})
}

type strs []string

func (s strs) has(v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestIntegrationSettingsRefuseBadInput(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newSettingsFixture(t, e)
		if st, body := e.Do("POST", f.refreshPath, nil); st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, body)
		}
		if st, body := e.Do("PUT", f.settingsPath, map[string]any{"visibility": "all", "notify_after_seconds": 120,
			"access": []map[string]any{{"user_id": "27", "channels": map[string]string{f.wa: "send"}}}}); st != http.StatusOK {
			t.Fatalf("good settings: %d %v", st, body)
		}
		_, before := e.Do("GET", f.settingsPath, nil)
		acc := func(user string, chs map[string]string, def string) map[string]any {
			return map[string]any{"access": []map[string]any{{"user_id": user, "channels": chs, "default_channel_id": def}}}
		}
		cases := []struct {
			name   string
			path   string
			body   any
			status int
			code   string
			// field is the error's "field" key ("" for unreadable JSON).
			field string
		}{
			{"unknown user", f.settingsPath, acc("404", map[string]string{f.wa: "read"}, ""), 422, "access_user_unknown", "access[0].user_id"},
			{"unknown level", f.settingsPath, acc("1", map[string]string{f.wa: "write"}, ""), 422, "access_level_invalid", fmt.Sprintf("access[0].channels[%q]", f.wa)},
			{"channel not bound here", f.settingsPath, acc("1", map[string]string{f.loose: "read"}, ""), 422, "access_channel_not_bound", fmt.Sprintf("access[0].channels[%q]", f.loose)},
			{"default without send", f.settingsPath, acc("1", map[string]string{f.wa: "read"}, f.wa), 422, "access_default_not_send", "access[0].default_channel_id"},
			{"duplicate user", f.settingsPath, map[string]any{"access": []map[string]any{{"user_id": "1"}, {"user_id": "1"}}}, 422, "access_user_duplicate", "access[1].user_id"},
			{"bad visibility", f.settingsPath, map[string]any{"visibility": "mine"}, 422, "visibility_invalid", "visibility"},
			{"unknown chat admin", f.settingsPath, map[string]any{"chat_admin_user_id": "404"}, 422, "chat_admin_user_unknown", "chat_admin_user_id"},
			{"notify too soon", f.settingsPath, map[string]any{"notify_after_seconds": 29}, 422, "notify_after_seconds_out_of_range", "notify_after_seconds"},
			{"notify too late", f.settingsPath, map[string]any{"notify_after_seconds": 86401}, 422, "notify_after_seconds_out_of_range", "notify_after_seconds"},
			{"bad access mode", f.settingsPath, map[string]any{"access_mode": "closed"}, 422, "access_mode_invalid", "access_mode"},
			{"open with rows", f.settingsPath, map[string]any{"access_mode": "open", "access": []map[string]any{{"user_id": "1", "channels": map[string]string{f.wa: "read"}}}}, 422, "access_mode_conflict", "access_mode"},
			{"unknown field", f.settingsPath, map[string]any{"visibilty": "own"}, 400, "invalid_json", ""},
			{"wrong type", f.settingsPath, map[string]any{"notify_after_seconds": "600"}, 400, "invalid_json", ""},
			// A good field next to a bad one: neither is written.
			{"good visibility, bad matrix", f.settingsPath, map[string]any{"visibility": "own", "access": []map[string]any{{"user_id": "404"}}}, 422, "access_user_unknown", "access[0].user_id"},
			{"bulk bad op", f.bulkPath, map[string]any{"op": "drop_all"}, 422, "bulk_op_invalid", "op"},
			{"bulk add without level", f.bulkPath, map[string]any{"op": "add_all"}, 422, "bulk_level_invalid", "level"},
			{"bulk remove with level", f.bulkPath, map[string]any{"op": "remove_all", "level": "read"}, 422, "bulk_level_invalid", "level"},
			{"bulk channel not bound", f.bulkPath, map[string]any{"op": "add_all", "channel_id": f.loose, "level": "read"}, 422, "access_channel_not_bound", "channel_id"},
			{"bulk unknown field", f.bulkPath, map[string]any{"op": "add_all", "level": "read", "all": true}, 400, "invalid_json", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				st, body := e.Do(http.MethodPut, c.path, c.body)
				if c.path == f.bulkPath {
					st, body = e.Do(http.MethodPost, c.path, c.body)
				}
				if st != c.status || errCode(body) != c.code {
					t.Fatalf("%d %v, want %d %s", st, body, c.status, c.code)
				}
				msg, _ := body["error"].(map[string]any)["message"].(string)
				if msg == "" {
					t.Error("no message")
				}
				if field, _ := body["error"].(map[string]any)["field"].(string); c.field != "" && field != c.field {
					t.Errorf("field %q, want %q", field, c.field)
				}
				if _, after := e.Do("GET", f.settingsPath, nil); !reflect.DeepEqual(after, before) {
					t.Fatalf("a refused change changed the settings:\n%v\n%v", before, after)
				}
			})
		}
	})
}

// A workspace's token reaches its own integrations' settings only;
// another workspace's token finds nothing there.
func TestIntegrationSettingsTenantBoundary(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newSettingsFixture(t, e)
		_, tok := e.Do("POST", "/api/v1/workspaces/"+f.ws+"/tokens", nil)
		own := tok["token"].(string)
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Чужие"})
		_, tok = e.Do("POST", "/api/v1/workspaces/"+other["id"].(string)+"/tokens", nil)
		foreign := tok["token"].(string)

		calls := []struct{ method, path string }{
			{"GET", f.settingsPath}, {"PUT", f.settingsPath}, {"POST", f.bulkPath}, {"POST", f.refreshPath},
		}
		body := map[string]any{
			f.settingsPath: map[string]any{"visibility": "own"},
			f.bulkPath:     map[string]any{"op": "add_all", "level": "send"},
		}
		for _, c := range calls {
			var b any
			if v, ok := body[c.path]; ok && c.method != "GET" {
				b = v
			}
			if st, resp := e.Do(c.method, c.path, b, foreign); st != http.StatusNotFound {
				t.Errorf("%s %s with another workspace's token: %d %v", c.method, c.path, st, resp)
			}
		}
		if _, got := e.Do("GET", f.settingsPath, nil); got["visibility"] != "all" || got["access_mode"] != "open" || len(got["users"].([]any)) != 0 {
			t.Fatalf("another workspace changed the settings: %v", got)
		}
		for _, c := range calls {
			var b any
			if v, ok := body[c.path]; ok && c.method != "GET" {
				b = v
			}
			for name, tok := range map[string]string{"own": own, "operator": apptest.AdminToken} {
				if st, resp := e.Do(c.method, c.path, b, tok); st != http.StatusOK {
					t.Errorf("%s %s with the %s token: %d %v", c.method, c.path, name, st, resp)
				}
			}
		}
	})
}

// A portal that revoked the app answers refresh with a clear 409 and
// leaves the stored users as they were.
func TestIntegrationRefreshNeedsReauth(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newSettingsFixture(t, e)
		if st, _ := e.Do("POST", f.refreshPath, nil); st != http.StatusOK {
			t.Fatal("first refresh")
		}
		e.B24.RevokeRefreshTokens(apptest.B24MemberID)
		e.B24.ExpireAccessTokens(apptest.B24MemberID)
		if err := e.B24.SetUserActive(apptest.B24MemberID, 27, false); err != nil {
			t.Fatal(err)
		}
		st, body := e.Do("POST", f.refreshPath, nil)
		if st != http.StatusConflict || errCode(body) != "integration_needs_reauth" {
			t.Fatalf("refresh of a revoked portal: %d %v", st, body)
		}
		// The portal is marked; the next refresh says so without calling.
		st, body = e.Do("POST", f.refreshPath, nil)
		if st != http.StatusConflict || errCode(body) != "integration_needs_reauth" {
			t.Fatalf("second refresh: %d %v", st, body)
		}
		if _, got := e.Do("GET", f.settingsPath, nil); !usersOf(got)["27 Olga Ivanova"] {
			t.Fatalf("a failed refresh changed the users: %v", got)
		}
	})
}

// tabAs opens the deal's card tab as a portal user.
func tabAs(t *testing.T, e *apptest.Env, user, deal int) string {
	t.Helper()
	st, page := frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, user), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(deal)+`"}`)
	if st != http.StatusOK {
		t.Fatalf("tab as %d: %d\n%s", user, st, page)
	}
	return page
}

// sendAs sends from the card tab as the user and returns the answer's
// status and page (the redirect followed on success).
func sendAs(t *testing.T, e *apptest.Env, sess, target, text string) (int, string) {
	t.Helper()
	resp, err := noFollow.PostForm(e.URL+"/bitrix24/tab/send", url.Values{"sess": {sess}, "target": {target}, "text": {text}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		return submitFollow(t, e, resp.Header.Get("Location"))
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func submitFollow(t *testing.T, e *apptest.Env, loc string) (int, string) {
	t.Helper()
	next, err := http.Get(e.URL + loc)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Body.Close()
	b, _ := io.ReadAll(next.Body)
	return next.StatusCode, string(b)
}

// The card tab applies the access matrix and visibility: none shows
// nothing of the channel, read shows it and refuses the send with 403,
// "own" hides another user's dialog unless the user is the chat admin.
func TestCardTabEnforcesAccess(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newSettingsFixture(t, e)
		e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Когда доставка?")
		e.Eventually("inbound", func() bool { return len(e.Messages(f.wa)) == 1 })
		e.WaitIdle()
		contact := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "+7 916 123-45-67", "VALUE_TYPE": "WORK"}}})
		deal := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Заказ", "CONTACT_ID": contact})
		if st, _ := e.Do("POST", f.refreshPath, nil); st != http.StatusOK {
			t.Fatal("refresh")
		}
		target := f.wa + "|+79161234567"
		shown := `value="` + strings.ReplaceAll(target, "+", "&#43;") + `"` // as the page escapes it
		const olga = 27                                                     // not a portal admin

		// Never configured: everyone reads and sends (upgrades lock nobody out).
		page := tabAs(t, e, olga, deal)
		if !strings.Contains(page, "Когда доставка?") || !strings.Contains(page, shown) {
			t.Fatalf("open access: \n%s", page)
		}
		if got := ticketContacts(t, page); len(got) != 1 {
			t.Fatalf("open access: the stream ticket names %v", got)
		}
		if st, page := sendAs(t, e, sessOf(t, page), target, "Открыто"); st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
			t.Fatalf("send with open access: %d\n%s", st, page)
		}

		put := func(body map[string]any) {
			t.Helper()
			if st, resp := e.Do("PUT", f.settingsPath, body); st != http.StatusOK {
				t.Fatalf("put %v: %d %v", body, st, resp)
			}
		}
		matrix := func(level string) map[string]any {
			return map[string]any{"access": []map[string]any{
				{"user_id": "27", "channels": map[string]string{f.wa: level, f.ig: "send"}},
			}}
		}

		// none: nothing of the channel, and a send (with a session from
		// before) is refused.
		oldSess := sessOf(t, page)
		put(matrix("none"))
		page = tabAs(t, e, olga, deal)
		// The page's event stream may tell of nobody it does not show.
		if got := ticketContacts(t, page); len(got) != 0 {
			t.Fatalf("no access: the stream ticket names %v", got)
		}
		if strings.Contains(page, "Когда доставка?") || strings.Contains(page, "Открыто") || strings.Contains(page, shown) {
			t.Fatalf("none still shows the channel:\n%s", page)
		}
		if st, page := sendAs(t, e, oldSess, target, "Нельзя"); st != http.StatusForbidden || !strings.Contains(page, "нет доступа") {
			t.Fatalf("send with none: %d\n%s", st, page)
		}

		// read: the conversation shows, the send box does not, the page
		// says why, and a send is a 403.
		put(matrix("read"))
		page = tabAs(t, e, olga, deal)
		if !strings.Contains(page, "Когда доставка?") || strings.Contains(page, shown) || !strings.Contains(page, "только просмотр") {
			t.Fatalf("read:\n%s", page)
		}
		// Inside Bitrix24 the portal's admin sets the rights, in the app.
		if !strings.Contains(page, "администратор портала Bitrix24 в настройках приложения") || strings.Contains(page, "администратор Switchboard") {
			t.Fatalf("the read-only notice names the wrong admin:\n%s", page)
		}
		// The page has no form any more; a session from before still
		// cannot send.
		if st, page := sendAs(t, e, oldSess, target, "Нельзя"); st != http.StatusForbidden || !strings.Contains(page, "только просмотр") {
			t.Fatalf("send with read: %d\n%s", st, page)
		}

		// send again, then "own" visibility with the dialog owned by 1.
		put(matrix("send"))
		setOwner(t, e, f, "1")
		put(map[string]any{"visibility": "own"})
		page = tabAs(t, e, olga, deal)
		if strings.Contains(page, "Когда доставка?") {
			t.Fatalf("own visibility shows another user's dialog:\n%s", page)
		}
		// It says why, rather than "no messages" / "no phone or channel".
		if !strings.Contains(page, "Этот диалог ведёт другой сотрудник") || strings.Contains(page, "Сообщений с этим клиентом пока нет") ||
			strings.Contains(page, "нет номера телефона") {
			t.Fatalf("own visibility does not say a colleague handles it:\n%s", page)
		}
		if st, _ := sendAs(t, e, oldSess, target, "Чужой"); st != http.StatusForbidden {
			t.Fatalf("send into another user's dialog: %d", st)
		}
		// The chat admin sees it.
		put(map[string]any{"chat_admin_user_id": "27"})
		if page = tabAs(t, e, olga, deal); !strings.Contains(page, "Когда доставка?") {
			t.Fatalf("chat admin:\n%s", page)
		}
		// Their own dialog, without being chat admin.
		put(map[string]any{"chat_admin_user_id": ""})
		setOwner(t, e, f, "27")
		page = tabAs(t, e, olga, deal)
		if !strings.Contains(page, "Когда доставка?") {
			t.Fatalf("own dialog hidden:\n%s", page)
		}
		if st, page := sendAs(t, e, sessOf(t, page), target, "Моё"); st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
			t.Fatalf("send in own dialog: %d\n%s", st, page)
		}
		// The portal's admin passes the matrix and visibility.
		if page = tabAs(t, e, 1, deal); !strings.Contains(page, "Когда доставка?") || !strings.Contains(page, shown) {
			t.Fatalf("portal admin:\n%s", page)
		}
	})
}

// setOwner gives the WhatsApp customer's dialog to a CRM user, as the
// owner policies do.
func setOwner(t *testing.T, e *apptest.Env, f *settingsFixture, owner string) {
	t.Helper()
	ctx := context.Background()
	ds, _, err := e.App.Store.ListDialogs(ctx, store.All, store.DialogFilter{IntegrationID: f.integ, ChannelID: f.wa}, nil, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("dialogs: %v %d", err, len(ds))
	}
	k := store.DialogKey{IntegrationID: f.integ, ChannelID: f.wa, ContactID: ds[0].ContactID}
	err = e.App.Store.Tx(ctx, func(tx *gorm.DB) error {
		_, err := store.SetDialogOwner(tx, k, owner, false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
