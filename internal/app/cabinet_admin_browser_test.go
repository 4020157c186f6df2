package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

// An owner adds a WhatsApp channel (checked against the Meta simulator),
// opens the portal's settings, makes an employee read-only in it, sees
// the choice kept after a reload, and switches the language; the pages
// are looked at on a desktop and on a phone.
func TestCabinetAdminInBrowser(t *testing.T) {
	ctx := browser(t)
	e := apptest.Start(t, b24Opts)
	integ, ws := e.InstallBitrix24()
	if st, b := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"timezone": "Europe/Moscow"}); st != 200 {
		t.Fatalf("workspace: %d %v", st, b)
	}
	addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
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
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		return evalIn[string](t, ctx, `document.querySelector(`+strconv.Quote(sel)+`).innerText`)
	}
	phone := func(on bool) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if !on {
				_, err := cdp.Call(ctx, tg, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
				return err
			}
			_, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true})
			return err
		})
	}
	notWide := func(what string) {
		t.Helper()
		if evalIn[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
			t.Errorf("%s is wider than the screen", what)
		}
	}
	do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "ru-RU,ru;q=0.9"}})
		return err
	}), chromedp.Navigate(e.URL+"/login"))
	waitPage(t, ctx, `!!document.querySelector('#sign-in')`)
	do(chromedp.SendKeys("#email", "owner@example.com"), chromedp.SendKeys("#password", ownerPW), chromedp.Click("#sign-in"))
	waitPage(t, ctx, `!!document.querySelector('#channels')`)

	// Add a WhatsApp channel: first with the number where its id goes.
	do(chromedp.Navigate(e.URL + "/channels"))
	waitPage(t, ctx, `!!document.querySelector('#add-channel')`)
	do(chromedp.SendKeys("#c-name", "Продажи WA"),
		chromedp.SendKeys("#c-pnid", "+7 701 234 56 78"),
		chromedp.SendKeys("#c-waba", apptest.WabaID),
		chromedp.SendKeys("#c-token", apptest.WAToken),
		chromedp.Click("#add-channel-submit"))
	waitPage(t, ctx, `!!document.querySelector('#problem')`)
	if p := text("#problem"); !strings.Contains(p, "ID номера телефона") {
		t.Errorf("refusal: %s", p)
	}
	if !evalIn[bool](t, ctx, `document.querySelector('#c-pnid').classList.contains('bad')`) {
		t.Error("the refused field is not marked")
	}
	do(screenshot(t, "cabinet-channels-refused.png"))
	do(chromedp.SetValue("#c-pnid", apptest.PhoneNumberID),
		chromedp.SendKeys("#c-token", apptest.WAToken),
		chromedp.Click("#add-channel-submit"))
	waitPage(t, ctx, `!!document.querySelector('#notice')`)
	list := text("#channel-list")
	for _, want := range []string{"Продажи WA", "работает", apptest.PhoneNumberID} {
		if !strings.Contains(list, want) {
			t.Errorf("channel list lacks %q:\n%s", want, list)
		}
	}
	if w := text("#webhook"); !strings.Contains(w, e.URL+"/webhooks/meta") || !strings.Contains(w, apptest.VerifyToken) {
		t.Errorf("webhook box:\n%s", w)
	}
	do(screenshot(t, "cabinet-channels-ru.png"))
	var wa string
	for name, ch := range channelsOf(t, e, ws) {
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
	do(chromedp.Navigate(e.URL + "/integrations"))
	waitPage(t, ctx, `!!document.querySelector('.settings-link')`)
	do(screenshot(t, "cabinet-integrations-ru.png"), chromedp.Click(".settings-link"))
	waitPage(t, ctx, `!!document.querySelector('#settings-all')`)
	sel := `select[name="lvl:7:` + wa + `"]`
	do(chromedp.SetValue(sel, "read"), chromedp.Click("#save"))
	waitPage(t, ctx, `!!document.querySelector('#notice')`)
	do(chromedp.Navigate(e.URL + "/integrations/" + integ))
	waitPage(t, ctx, `!!document.querySelector('#settings-all')`)
	if got := evalIn[string](t, ctx, `document.querySelector(`+strconv.Quote(sel)+`).value`); got != "read" {
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
	do(screenshot(t, "cabinet-integration-ru.png"), elementShot(t, "#access", "cabinet-access-ru.png"))

	// English.
	do(chromedp.Click("#lang-switch"))
	waitPage(t, ctx, `document.documentElement.lang === 'en'`)
	if s := text("#settings-form"); !strings.Contains(s, "Employees' access to channels") || !strings.Contains(s, "read and send") {
		t.Errorf("settings in English:\n%.500s", s)
	}
	do(screenshot(t, "cabinet-integration-en.png"))

	// A phone: the matrix scrolls inside its box, the page does not.
	do(phone(true), chromedp.Reload())
	waitPage(t, ctx, `!!document.querySelector('#settings-all')`)
	notWide("the settings page on a phone")
	if !evalIn[bool](t, ctx, `(() => { const b = document.querySelector('.matrix-box'); return b.scrollWidth > b.clientWidth })()`) {
		t.Log("the matrix fits a phone's width (nothing to scroll)")
	}
	do(screenshot(t, "cabinet-integration-phone.png"), elementShot(t, "#access", "cabinet-access-phone.png"), chromedp.Navigate(e.URL+"/channels"))
	waitPage(t, ctx, `!!document.querySelector('#add-channel')`)
	notWide("the channels page on a phone")
	do(screenshot(t, "cabinet-channels-phone.png"), chromedp.Navigate(e.URL+"/integrations"))
	waitPage(t, ctx, `!!document.querySelector('#integration-list')`)
	notWide("the integrations page on a phone")
	do(screenshot(t, "cabinet-integrations-phone.png"), phone(false))
	noPasswordsIn(t, e, ownerPW, apptest.WAToken)
}

// elementShot saves one element of the page as a PNG, at its own size
// (a phone's full page is too tall to read).
func elementShot(t *testing.T, sel, name string) chromedp.Action[chromedp.Void] {
	dir := screenshotDir(t)
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.Screenshot(sel)(ctx, tg)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		t.Logf("screenshot %s", p)
		return os.WriteFile(p, png, 0o644)
	})
}
