package app_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// postRaw posts a form to path (which may carry a query string) without
// following a redirect.
func postRaw(t *testing.T, e *apptest.Env, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := noFollow.PostForm(e.URL+path, form)
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

// english finds an English sentence of ours on a page that should be
// Russian.
var english = regexp.MustCompile(`(?i)\b(the|is|must|session|reopen|belongs?|pipeline|numeric)\b`)

func TestBitrix24AppPageChoices(t *testing.T) {
	// On both databases: the save goes through the store.
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		if err := e.B24.AddDealCategory(apptest.B24MemberID, b24sim.DealCategory{ID: 1, Name: "Опт", Sort: 400}); err != nil {
			t.Fatal(err)
		}
		admin := e.B24.UserToken(apptest.B24MemberID, e.Portal.AdminUserID())

		// The portal's lines, pipelines and stages are offered as choices,
		// read in one batch, and a second for the extra pipeline's stages.
		e.WaitIdle()
		batches := len(e.B24.Calls("batch"))
		st, page := frame(t, e, "/bitrix24/app", admin, "DEFAULT", "{}")
		if n := len(e.B24.Calls("batch")) - batches; n != 2 {
			t.Errorf("the page view made %d batch calls, want 2", n)
		}
		for _, c := range e.B24.Calls("") {
			if !c.InBatch && (c.Method == "crm.status.list" || c.Method == "crm.category.list" || c.Method == "imopenlines.config.list.get") {
				t.Errorf("%s called outside a batch", c.Method)
			}
		}
		for _, want := range []string{`<option value="1" >#1 WhatsApp</option>`, `>#2 Instagram<`, `<option value="1" >Опт</option>`,
			`value="C1:PREPARATION" data-entity="deal" data-pipeline="1"`, `value="PREPARATION" data-entity="deal" data-pipeline="0"`, `value="IN_PROCESS" data-entity="lead"`} {
			if st != http.StatusOK || !strings.Contains(page, want) {
				t.Fatalf("app page lacks %s: %d\n%s", want, st, page)
			}
		}
		if strings.Contains(page, `name="category_id" size`) || strings.Contains(page, "choices-notice") {
			t.Fatalf("id fields shown although the portal gave its lists:\n%s", page)
		}
		sess := sessOf(t, page)

		// Parameters in the query string change nothing.
		q := url.Values{"sess": {sess}, "channel_id": {ch}, "mode": {"openlines"}, "line_id": {"1"}}.Encode()
		if st, body := postRaw(t, e, "/bitrix24/app/bind?"+q, nil); st != http.StatusUnauthorized || !strings.Contains(body, "Битрикс24") {
			t.Fatalf("a save from the query string: %d %s", st, body)
		}
		if st, body := postRaw(t, e, "/bitrix24/app/bind?"+q, url.Values{"sess": {sess}}); st == http.StatusSeeOther || english.MatchString(textOf(body)) {
			t.Fatalf("a save with its fields in the query string: %d %s", st, body)
		}
		if b := e.Bindings(integ); len(b) != 0 {
			t.Fatalf("the query string made a binding: %v", b)
		}

		// A stage of another pipeline is refused in the page's language,
		// nothing is stored, and the form keeps the chosen mode and fields.
		st, page = postRaw(t, e, "/bitrix24/app/bind", url.Values{"sess": {sess}, "channel_id": {ch}, "mode": {"crm"}, "entity": {"deal"},
			"category_id": {"1"}, "stage_id": {"PREPARATION"}, "line_id": {"1"}})
		if st != http.StatusUnprocessableEntity || !strings.Contains(page, "не относится к выбранной воронке") || english.MatchString(textOf(page)) {
			t.Fatalf("a stage of another pipeline: %d\n%s", st, page)
		}
		if !strings.Contains(page, `<option value="crm" selected>`) || !strings.Contains(page, `<option value="deal" selected>`) || !strings.Contains(page, `<option value="1" selected>Опт</option>`) {
			t.Fatalf("the refused form lost the chosen mode:\n%s", page)
		}
		if b := e.Bindings(integ); len(b) != 0 {
			t.Fatalf("a refused save stored: %v", b)
		}
		// An unknown line and a hand-made pipeline id are refused the same way.
		for _, f := range []url.Values{
			{"mode": {"openlines"}, "line_id": {"9"}},
			{"mode": {"crm"}, "entity": {"deal"}, "category_id": {"abc"}},
			{"mode": {"crm"}, "entity": {"lead"}, "stage_id": {"C1:NEW"}},
		} {
			f.Set("sess", sess)
			f.Set("channel_id", ch)
			if st, page := postRaw(t, e, "/bitrix24/app/bind", f); st != http.StatusUnprocessableEntity || english.MatchString(textOf(page)) || !strings.Contains(page, `class="notice err"`) {
				t.Fatalf("%v: %d\n%s", f, st, page)
			}
		}

		// The pipeline's own stage saves.
		st, page = submit(t, e, "/bitrix24/app/bind", url.Values{"sess": {sess}, "channel_id": {ch}, "mode": {"crm"}, "entity": {"deal"},
			"category_id": {"1"}, "stage_id": {"C1:PREPARATION"}, "line_id": {"1"}})
		if st != http.StatusOK || !strings.Contains(page, "Сохранено") {
			t.Fatalf("save: %d\n%s", st, page)
		}
		b := e.Bindings(integ)
		if len(b) != 1 || b[0].(map[string]any)["category_id"] != "1" || b[0].(map[string]any)["stage_id"] != "C1:PREPARATION" || b[0].(map[string]any)["line_id"] != nil {
			t.Fatalf("binding after the save: %v", b)
		}

		// When the portal refuses a list the page says so in its language and
		// takes the id as typed.
		e.B24.FailNext(apptest.B24MemberID, "crm.category.list", 1, http.StatusForbidden, "ACCESS_DENIED", "Access denied")
		st, page = frame(t, e, "/bitrix24/app", admin, "DEFAULT", "{}")
		if st != http.StatusOK || !strings.Contains(page, "Битрикс24 не отдал") || !strings.Contains(page, `<input name="category_id"`) || !strings.Contains(page, `>#1 WhatsApp<`) {
			t.Fatalf("page without the portal's pipelines: %d\n%s", st, page)
		}
	})
}

var tags = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>|<[^>]*>`)

// textOf is what a person reads on a page: no markup, script or style.
func textOf(page string) string { return tags.ReplaceAllString(page, " ") }
