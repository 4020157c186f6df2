package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/store"
)

// templatesOf lists a channel's stored templates by name.
func templatesOf(t *testing.T, e *apptest.Env, channelID string, token ...string) map[string]map[string]any {
	t.Helper()
	st, body := e.Do("GET", "/api/v1/channels/"+channelID+"/templates", nil, token...)
	if st != http.StatusOK {
		t.Fatalf("list templates: %d %v", st, body)
	}
	out := map[string]map[string]any{}
	for _, v := range body["templates"].([]any) {
		m := v.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func tpl(name, status, body string) metasim.Template {
	return metasim.Template{ID: "9" + name, Name: name, Language: "ru", Category: "UTILITY", Status: status,
		Components: []map[string]any{{"type": "BODY", "text": body}}}
}

// A refresh stores the WABA's whole set with the variables counted; a
// second one replaces it (a template deleted at Meta disappears), across
// pages; a token Meta refuses is a named error that keeps the old set.
func TestTemplatesRefresh(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		_, wsToken := newWorkspaceToken(t, e, "Шаблоны")
		ch := e.CreateWhatsApp(wsToken)
		if got := templatesOf(t, e, ch, wsToken); len(got) != 0 {
			t.Fatalf("before a refresh: %v", got)
		}
		st, body := e.Do("POST", "/api/v1/channels/"+ch+"/templates/refresh", nil, wsToken)
		if st != http.StatusOK || len(body["templates"].([]any)) != 4 {
			t.Fatalf("refresh: %d %v", st, body)
		}
		got := templatesOf(t, e, ch, wsToken)
		want := map[string][4]any{ // status, category, header vars, body vars
			"order_update":         {"APPROVED", "UTILITY", 0.0, 2.0},
			"spring_sale":          {"APPROVED", "MARKETING", 1.0, 2.0},
			"appointment_reminder": {"PENDING", "UTILITY", 0.0, 2.0},
			"win_back":             {"REJECTED", "MARKETING", 0.0, 0.0},
		}
		for name, w := range want {
			g := got[name]
			if g == nil || g["status"] != w[0] || g["category"] != w[1] || g["header_variables"] != w[2] || g["body_variables"] != w[3] ||
				g["variables"] != w[2].(float64)+w[3].(float64) {
				t.Errorf("%s: got %v, want %v", name, g, w)
			}
		}
		if comps, _ := got["spring_sale"]["components"].([]any); len(comps) != 4 {
			t.Errorf("spring_sale components: %v", got["spring_sale"]["components"])
		}

		// Meta now holds three templates, one a page: the refresh walks
		// the pages and win_back etc. disappear.
		e.Sim.SetTemplatePageSize(1)
		e.Sim.SetTemplates(apptest.WabaID, []metasim.Template{
			tpl("a_first", "APPROVED", "Hi {{1}}, {{2}} and {{1}} again"),
			tpl("b_second", "PENDING", "Named {{order}} and {{ name }}"),
			tpl("c_third", "REJECTED", "No variables"),
		})
		if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/templates/refresh", nil, wsToken); st != http.StatusOK {
			t.Fatalf("second refresh: %d %v", st, body)
		}
		got = templatesOf(t, e, ch, wsToken)
		if len(got) != 3 || got["a_first"]["variables"] != 2.0 || got["b_second"]["variables"] != 2.0 || got["c_third"]["variables"] != 0.0 {
			t.Fatalf("after the second refresh: %v", got)
		}
		pages := 0
		for _, r := range e.Sim.Requests() {
			if strings.HasSuffix(r.Path, "/"+apptest.WabaID+"/message_templates") {
				pages++
			}
		}
		if pages != 1+3 {
			t.Errorf("Graph reads of message_templates: %d, want 4 (1 + 3 pages)", pages)
		}

		// Another workspace sees no such channel, and changes nothing.
		_, otherToken := newWorkspaceToken(t, e, "Чужой")
		if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/templates/refresh", nil, otherToken); st != http.StatusNotFound {
			t.Fatalf("another workspace's refresh: %d %v", st, body)
		}
		if st, _ := e.Do("GET", "/api/v1/channels/"+ch+"/templates", nil, otherToken); st != http.StatusNotFound {
			t.Fatalf("another workspace's list: %d", st)
		}

		// Instagram has no templates.
		ig := e.CreateInstagram(wsToken)
		if st, body := e.Do("POST", "/api/v1/channels/"+ig+"/templates/refresh", nil, wsToken); st != http.StatusConflict || errCode(body) != "templates_whatsapp_only" {
			t.Fatalf("instagram refresh: %d %v", st, body)
		}
		if st, body := e.Do("GET", "/api/v1/channels/"+ig+"/templates", nil, wsToken); st != http.StatusConflict || errCode(body) != "templates_whatsapp_only" {
			t.Fatalf("instagram list: %d %v", st, body)
		}

		// A token Meta refuses: a named error, the stored set kept.
		e.Sim.SetTemplates(apptest.WabaID, nil)
		e.Sim.ExpireToken(apptest.WAToken)
		st, body = e.Do("POST", "/api/v1/channels/"+ch+"/templates/refresh", nil, wsToken)
		if st != http.StatusBadGateway || errCode(body) != "templates_token_refused" {
			t.Fatalf("refresh with a refused token: %d %v", st, body)
		}
		if got := templatesOf(t, e, ch, wsToken); len(got) != 3 {
			t.Fatalf("after a refused refresh the set changed: %v", got)
		}
	})
}

// The daily refresh is a queued job per channel that refreshes and queues
// itself for the next day.
func TestTemplatesDailyJob(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/templates/refresh", nil); st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, body)
		}
		type jobRow struct {
			ID    int64
			RunAt time.Time
		}
		pending := func() []jobRow {
			var rows []jobRow
			if err := e.App.DB.Gorm.Raw(`SELECT id, run_at FROM jobs WHERE kind = 'templates.refresh' AND queue_key = ? AND state = 'pending'`,
				"templates:"+ch).Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			return rows
		}
		first := pending()
		if len(first) != 1 || first[0].RunAt.Before(store.Now().Add(23*time.Hour)) {
			t.Fatalf("after a refresh: pending daily jobs %v, want one a day later", first)
		}
		// A second manual refresh does not queue a second daily job.
		if st, _ := e.Do("POST", "/api/v1/channels/"+ch+"/templates/refresh", nil); st != http.StatusOK {
			t.Fatal("second refresh")
		}
		if n := len(pending()); n != 1 {
			t.Fatalf("after a second refresh: %d pending daily jobs", n)
		}
		// Meta's set changes; the day passes.
		e.Sim.SetTemplates(apptest.WabaID, []metasim.Template{tpl("only_one", "APPROVED", "{{1}}")})
		if err := e.App.DB.Gorm.Exec(`UPDATE jobs SET run_at = ? WHERE id = ?`, store.Now().Add(-time.Second), first[0].ID).Error; err != nil {
			t.Fatal(err)
		}
		e.App.Queue.Notify()
		e.Eventually("the daily job refreshed the set and queued the next day", func() bool {
			got := map[string]bool{}
			st, body := e.Do("GET", "/api/v1/channels/"+ch+"/templates", nil)
			if st != http.StatusOK {
				return false
			}
			for _, v := range body["templates"].([]any) {
				got[v.(map[string]any)["name"].(string)] = true
			}
			next := pending()
			return len(got) == 1 && got["only_one"] && len(next) == 1 && next[0].ID != first[0].ID &&
				next[0].RunAt.After(store.Now().Add(23*time.Hour))
		})
	})
}

// The cabinet's templates page lists the channel's templates with their
// status in the reader's language; owners refresh it with the CSRF token,
// managers only see it.
func TestCabinetTemplatesPage(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		ch := e.CreateWhatsApp()
		ig := e.CreateInstagram()
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		addUser(t, e, ws, "manager@example.com", "manager", "manager password")
		v := newVisitor(t, e)
		v.lang = "ru"
		if st := v.login("owner@example.com", ownerPW); st != http.StatusSeeOther {
			t.Fatalf("sign in: %d", st)
		}
		_, list := v.get("/channels")
		if !strings.Contains(list, `href="/channels/`+ch+`/templates"`) || strings.Contains(list, `href="/channels/`+ig+`/templates"`) {
			t.Errorf("the channels page does not link the WhatsApp channel's templates (only)")
		}
		st, page := v.get("/channels/" + ch + "/templates")
		if st != http.StatusOK || !strings.Contains(page, "Шаблонов пока нет") {
			t.Fatalf("empty templates page: %d\n%.600s", st, page)
		}
		csrf := csrfOf(t, page)
		// Without the CSRF token: refused, nothing read from Meta.
		if st, _ := v.post("/channels/"+ch+"/templates/refresh", url.Values{}); st != http.StatusForbidden {
			t.Fatalf("refresh without csrf: %d", st)
		}
		if got := templatesOf(t, e, ch); len(got) != 0 {
			t.Fatalf("a refused refresh stored templates: %v", got)
		}
		page = v.saved("/channels/"+ch+"/templates/refresh", url.Values{"csrf": {csrf}})
		for _, want := range []string{"Шаблоны обновлены", `data-name="order_update"`, `class="state active" data-status="APPROVED">одобрен`,
			`class="state pending" data-status="PENDING">на проверке`, `class="state error" data-status="REJECTED">отклонён`} {
			if !strings.Contains(page, want) {
				t.Errorf("templates page lacks %q", want)
			}
		}
		if i := strings.Index(page, `data-name="spring_sale"`); i < 0 || !strings.Contains(page[i:], `class="vars">3<`) {
			t.Errorf("spring_sale's variables (1 header + 2 body) not shown as 3")
		}
		// Instagram: the page says why, with no refresh button.
		st, page = v.get("/channels/" + ig + "/templates")
		if st != http.StatusOK || !strings.Contains(page, `data-code="templates_whatsapp_only"`) || strings.Contains(page, "refresh-templates") {
			t.Errorf("instagram templates page: %d", st)
		}
		// Another workspace's channel: not found, nothing read from Meta.
		_, otherToken := newWorkspaceToken(t, e, "Other")
		e.Sim.AddWhatsAppNumber("200000000000001", "300000000000001", "79160000001", "other-token")
		st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Other",
			"phone_number_id": "200000000000001", "waba_id": "300000000000001", "access_token": "other-token"}, otherToken)
		if st != http.StatusCreated {
			t.Fatalf("other workspace's channel: %d %v", st, body)
		}
		foreign := body["id"].(string)
		if st, _ := v.get("/channels/" + foreign + "/templates"); st != http.StatusNotFound {
			t.Errorf("another workspace's templates page: %d", st)
		}
		if st, _ := v.post("/channels/"+foreign+"/templates/refresh", url.Values{"csrf": {csrf}}); st != http.StatusNotFound {
			t.Errorf("another workspace's refresh via the page: %d", st)
		}
		if got := templatesOf(t, e, foreign, otherToken); len(got) != 0 {
			t.Errorf("another workspace's channel got templates: %v", got)
		}

		// A manager sees the list but no button, and cannot refresh.
		m := newVisitor(t, e)
		m.lang = "en"
		if st := m.login("manager@example.com", "manager password"); st != http.StatusSeeOther {
			t.Fatalf("manager sign in: %d", st)
		}
		st, page = m.get("/channels/" + ch + "/templates")
		if st != http.StatusOK || !strings.Contains(page, ">approved<") || strings.Contains(page, "refresh-templates") {
			t.Fatalf("manager's templates page: %d\n%.600s", st, page)
		}
		if st, _ := m.post("/channels/"+ch+"/templates/refresh", url.Values{"csrf": {csrfOf(t, page)}}); st != http.StatusForbidden {
			t.Errorf("a manager refreshed templates: %d", st)
		}
	})
}
