package browser_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/test/browsertest"
)

// An owner adds a WhatsApp channel (checked against the Meta simulator),
// opens the portal's settings, makes an employee read-only in it, sees
// the choice kept after a reload, and switches the language; the pages
// are looked at on a desktop and on a phone.
func TestCabinetAdminInBrowser(t *testing.T) {
	ctx := browsertest.New(t)
	e := apptest.Start(t, apptest.Options{Bitrix24: true})
	integ, ws := e.InstallBitrix24()
	if st, b := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"timezone": "Europe/Moscow"}); st != 200 {
		t.Fatalf("workspace: %d %v", st, b)
	}
	apptest.AddUser(t, e, ws, "owner@example.com", "owner", ownerPW)
	st, b := e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "Instagram", "workspace_id": ws,
		"ig_user_id": apptest.IGUserID, "page_id": "1122334455", "access_token": apptest.IGToken})
	if st != 201 {
		t.Fatalf("instagram: %d %v", st, b)
	}
	ig := b["id"].(string)
	users := []store.CRMUser{{UserID: "1", Name: "Иван Петров", Active: true}, {UserID: "7", Name: "Ольга Иванова", Active: true},
		{UserID: "12", Name: "Пётр Сидоров", Active: true}, {UserID: "19", Name: "Анна Смирнова", Active: false}}
	if err := e.App.Store.ReplaceCRMUsers(context.Background(), integ, users); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string { return browsertest.Text(t, ctx, sel) }
	notWide := func(what string) {
		t.Helper()
		if browsertest.Eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
			t.Errorf("%s is wider than the screen", what)
		}
	}
	browsertest.Do(t, ctx, browsertest.AcceptLanguage("ru-RU,ru;q=0.9"), chromedp.Navigate(e.URL+"/login"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#sign-in')`)
	browsertest.Do(t, ctx, chromedp.SendKeys("#email", "owner@example.com"), chromedp.SendKeys("#password", ownerPW), chromedp.Click("#sign-in"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#channels')`)

	// Add a WhatsApp channel: first with the number where its id goes.
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/channels"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#add-channel')`)
	browsertest.Do(t, ctx, chromedp.SendKeys("#c-name", "Продажи WA"),
		chromedp.SendKeys("#c-pnid", "+7 701 234 56 78"),
		chromedp.SendKeys("#c-waba", apptest.WabaID),
		chromedp.SendKeys("#c-token", apptest.WAToken),
		chromedp.Click("#add-channel-submit"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#problem')`)
	if p := text("#problem"); !strings.Contains(p, "ID номера телефона") {
		t.Errorf("refusal: %s", p)
	}
	if !browsertest.Eval[bool](t, ctx, `document.querySelector('#c-pnid').classList.contains('bad')`) {
		t.Error("the refused field is not marked")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-channels-refused.png"))
	browsertest.Do(t, ctx, chromedp.SetValue("#c-pnid", apptest.PhoneNumberID),
		chromedp.SendKeys("#c-token", apptest.WAToken),
		chromedp.Click("#add-channel-submit"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#notice')`)
	list := text("#channel-list")
	for _, want := range []string{"Продажи WA", "работает", apptest.PhoneNumberID} {
		if !strings.Contains(list, want) {
			t.Errorf("channel list lacks %q:\n%s", want, list)
		}
	}
	if w := text("#webhook"); !strings.Contains(w, e.URL+"/webhooks/meta") || !strings.Contains(w, apptest.VerifyToken) {
		t.Errorf("webhook box:\n%s", w)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-channels-ru.png"))
	var wa string
	for name, ch := range e.ChannelsByName(ws) {
		if name == "Продажи WA" {
			wa = ch["id"].(string)
		}
	}
	if wa == "" {
		t.Fatal("the channel added in the browser is not in the API")
	}
	for _, ch := range []string{wa, ig} {
		if st, b := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != 200 {
			t.Fatalf("bind: %d %v", st, b)
		}
	}
	if st, b := e.Do("POST", "/api/v1/integrations/"+integ+"/access/bulk", map[string]any{"op": "add_all", "level": "send"}); st != 200 {
		t.Fatalf("bulk: %d %v", st, b)
	}

	// The portal's settings: Ольга (7) becomes read-only in WhatsApp.
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/integrations"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.settings-link')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-integrations-ru.png"), chromedp.Click(".settings-link"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#settings-all')`)
	sel := `select[name="lvl:7:` + wa + `"]`
	browsertest.Do(t, ctx, chromedp.SetValue(sel, "read"), chromedp.Click("#save"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#notice')`)
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/integrations/"+integ))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#settings-all')`)
	if got := browsertest.Eval[string](t, ctx, `document.querySelector(`+strconv.Quote(sel)+`).value`); got != "read" {
		t.Errorf("after reload Ольга's WhatsApp access is %q", got)
	}
	_, body := e.Do("GET", "/api/v1/integrations/"+integ+"/settings", nil)
	found := false
	for _, r := range body["access"].([]any) {
		m := r.(map[string]any)
		if m["user_id"] == "7" {
			found = m["channels"].(map[string]any)[wa] == "read"
		}
	}
	if !found {
		t.Errorf("the API does not show Ольга read-only: %v", body["access"])
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-integration-ru.png"), browsertest.ElementShot(t, "#access", "cabinet-access-ru.png"))

	// English.
	browsertest.Do(t, ctx, chromedp.Click("#lang-switch"))
	browsertest.WaitFor(t, ctx, `document.documentElement.lang === 'en'`)
	if s := text("#settings-form"); !strings.Contains(s, "Employees' access to channels") || !strings.Contains(s, "read and send") {
		t.Errorf("settings in English:\n%.500s", s)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-integration-en.png"))

	// A phone: the matrix scrolls inside its box, the page does not.
	browsertest.Do(t, ctx, browsertest.Phone(true), chromedp.Reload())
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#settings-all')`)
	notWide("the settings page on a phone")
	if !browsertest.Eval[bool](t, ctx, `(() => { const b = document.querySelector('.matrix-box'); return b.scrollWidth > b.clientWidth })()`) {
		t.Log("the matrix fits a phone's width (nothing to scroll)")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-integration-phone.png"), browsertest.ElementShot(t, "#access", "cabinet-access-phone.png"), chromedp.Navigate(e.URL+"/channels"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#add-channel')`)
	notWide("the channels page on a phone")
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-channels-phone.png"), chromedp.Navigate(e.URL+"/integrations"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#integration-list')`)
	notWide("the integrations page on a phone")
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-integrations-phone.png"), browsertest.Phone(false))
	e.NoPasswordsInLogs(ownerPW, apptest.WAToken)
}
