package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// Pages a person uses are tested in a real browser: headless Chromium
// (Debian's chromium package) driven by chromedp.

// chromiumPath finds the browser. Without one the browser tests skip on a
// developer's machine but fail in CI, which installs it (.ci/run).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal("chromium is not installed, and CI must run the browser tests (apt-get install chromium)")
	}
	t.Skip("chromium is not installed; the browser tests skip outside CI")
	return ""
}

// browser starts a headless Chromium for one test. Every host but the
// loopback fails at once (the pages load Bitrix24's api.bitrix24.com
// script, which a test must not wait for).
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1200, 800),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// screenshotDir keeps the screenshots: SCREENSHOT_DIR when set (to look at
// them), else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// screenshot saves the whole page as a PNG (look at it: a page that
// renders wrong is a failing page).
func screenshot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	dir := screenshotDir(t)
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		t.Logf("screenshot %s", p)
		return os.WriteFile(p, png, 0o644)
	})
}

// evalIn runs a script on the page and returns its value.
func evalIn[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// openAsPortalUser serves the form Bitrix24's page posts into an iframe
// and returns its address: loading it in the browser opens the app's
// page as that user would.
func openAsPortalUser(t *testing.T, e *apptest.Env, userID int, placement, handler string, options map[string]any) string {
	t.Helper()
	req, err := e.B24.PlacementRequest(apptest.B24MemberID, userID, placement, handler, options, "ru")
	if err != nil {
		t.Fatal(err)
	}
	page, err := req.AutoSubmitHTML()
	if err != nil {
		t.Fatal(err)
	}
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if _, err := w.Write(page); err != nil {
			t.Log(err)
		}
	}))
	t.Cleanup(portal.Close)
	return portal.URL
}

// waitPage waits until cond is true on the page. It asks from Go, again
// and again, because a form's submit replaces the document under any
// query that waits inside the page.
func waitPage(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never had %s (last error %v)", cond, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// choose picks a select's option as a person would: the value changes and
// the form hears a change event.
func choose(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](`(function(){var s=document.querySelector(`+strconv.Quote(sel)+`);s.value=`+strconv.Quote(value)+
			`;s.dispatchEvent(new Event('change',{bubbles:true}));return s.value})()`)(ctx, tg)
		return err
	})
}

// shown reports whether the element takes space on the page.
func shown(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	return evalIn[bool](t, ctx, `(function(){var e=document.querySelector(`+strconv.Quote(sel)+`);return !!e && e.getClientRects().length>0})()`)
}

func TestBitrix24AppPageInBrowser(t *testing.T) {
	ctx := browser(t)
	e := apptest.Start(t, b24Opts)
	integ, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)
	if err := e.B24.AddDealCategory(apptest.B24MemberID, b24sim.DealCategory{ID: 1, Name: "Опт", Sort: 400}); err != nil {
		t.Fatal(err)
	}
	form := "#bind-" + ch
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	stages := func() []string {
		return evalIn[[]string](t, ctx, `[...document.querySelectorAll(`+strconv.Quote(form+" select.stage optgroup:not([hidden]) option")+`)].map(o=>o.value)`)
	}

	do(chromedp.Navigate(openAsPortalUser(t, e, e.Portal.AdminUserID(), "DEFAULT", e.URL+"/bitrix24/app", nil)),
		chromedp.WaitVisible(form+" select.mode"),
		// Open Lines: the line shows, the CRM fields do not.
		choose(form+" select.mode", "openlines"),
		screenshot(t, "app-openlines.png"))
	if !shown(t, ctx, form+" select[name=line_id]") || shown(t, ctx, form+" .f-crm") || shown(t, ctx, form+" select.stage") {
		t.Fatal("Open Lines mode shows the wrong fields")
	}

	// CRM deal in the "Опт" pipeline: only that pipeline's stages.
	do(choose(form+" select.mode", "crm"), choose(form+" select.entity", "deal"), choose(form+" select.category", "1"))
	if shown(t, ctx, form+" select[name=line_id]") || !shown(t, ctx, form+" select.category") || !shown(t, ctx, form+" select.stage") {
		t.Fatal("CRM deal mode shows the wrong fields")
	}
	if got := strings.Join(stages(), ","); got != "C1:NEW,C1:PREPARATION,C1:WON,C1:LOSE" {
		t.Fatalf("stages of the Опт pipeline: %s", got)
	}
	// Opened as a list only for the screenshot, so that the options show.
	do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[int](`document.querySelector(`+strconv.Quote(form+" select.stage")+`).size=7`)(ctx, tg)
		return err
	}), screenshot(t, "app-crm-deal.png"), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[int](`document.querySelector(`+strconv.Quote(form+" select.stage")+`).size=0`)(ctx, tg)
		return err
	}))

	// The stages follow the pipeline, and a lead gets lead statuses.
	do(choose(form+" select.category", "0"))
	if got := stages(); len(got) != 8 || got[0] != "NEW" {
		t.Fatalf("stages of the default pipeline: %v", got)
	}
	do(choose(form+" select.entity", "lead"))
	if got := stages(); shown(t, ctx, form+" select.category") || len(got) != 5 || got[1] != "IN_PROCESS" {
		t.Fatalf("lead: pipeline shown, or statuses %v", got)
	}

	do(choose(form+" select.entity", "deal"), choose(form+" select.category", "1"), choose(form+" select.stage", "C1:PREPARATION"),
		chromedp.Click(form+" button[type=submit]"))
	waitPage(t, ctx, `!!document.querySelector('#notice')`)
	do(screenshot(t, "app-saved.png"))
	if notice := evalIn[string](t, ctx, `document.querySelector('#notice').textContent`); !strings.Contains(notice, "Сохранено") {
		t.Fatalf("after the save: %q", notice)
	}
	b := bindingsOf(t, e, integ)
	if len(b) != 1 || b[0].(map[string]any)["mode"] != "crm" || b[0].(map[string]any)["category_id"] != "1" || b[0].(map[string]any)["stage_id"] != "C1:PREPARATION" {
		t.Fatalf("binding after the browser saved it: %v", b)
	}
	// The saved form opens in its mode, with the pipeline's stages.
	if shown(t, ctx, form+" select[name=line_id]") || strings.Join(stages(), ",") != "C1:NEW,C1:PREPARATION,C1:WON,C1:LOSE" {
		t.Fatalf("the saved form: %v", stages())
	}
}

func TestBitrix24CardTabInBrowser(t *testing.T) {
	ctx := browser(t)
	e := apptest.Start(t, b24Opts)
	_, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)
	e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Когда доставка?")
	e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })
	contact := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "8 916 123-45-67", "VALUE_TYPE": "WORK"}}})
	deal := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Заказ 4512", "CONTACT_ID": contact})

	err := chromedp.Do(ctx,
		// The handler is the one the gateway bound for the deal card tab.
		chromedp.Navigate(openAsPortalUser(t, e, 27, "CRM_DEAL_DETAIL_TAB", "", map[string]any{"ID": strconv.Itoa(deal)})),
		chromedp.WaitVisible("textarea[name=text]"),
		screenshot(t, "tab-opened.png"))
	if err != nil {
		t.Fatal(err)
	}
	if text := evalIn[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "Когда доставка?") || !strings.Contains(text, "+79161234567") {
		t.Fatalf("card tab: %s", text)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys("textarea[name=text]", "Завтра с 10 до 14."),
		chromedp.Click("button[type=submit]"))
	if err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, `!!document.querySelector('.notice')`)
	err = chromedp.Do(ctx, screenshot(t, "tab-sent.png"))
	if err != nil {
		t.Fatal(err)
	}
	if text := evalIn[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "поставлено в очередь") || !strings.Contains(text, "Завтра с 10 до 14.") {
		t.Fatalf("after the send: %s", text)
	}
	path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
	e.Eventually("sent through the Graph API", func() bool { return len(graphSends(e.Sim, path)) == 1 })
}

// Without script every field shows and the save still works; a refused
// save comes back worded in the page's language with the chosen mode.
func TestBitrix24AppPageWithoutScript(t *testing.T) {
	ctx := browser(t)
	e := apptest.Start(t, b24Opts)
	integ, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)
	if err := e.B24.AddDealCategory(apptest.B24MemberID, b24sim.DealCategory{ID: 1, Name: "Опт", Sort: 400}); err != nil {
		t.Fatal(err)
	}
	form := "#bind-" + ch
	err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}),
		chromedp.Navigate(openAsPortalUser(t, e, e.Portal.AdminUserID(), "DEFAULT", e.URL+"/bitrix24/app", nil)),
		// The portal's form cannot post itself without script either.
		chromedp.Click("noscript button, form button"))
	if err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, `!!document.querySelector(`+strconv.Quote(form)+`)`)
	for _, sel := range []string{"select[name=line_id]", "select.category", "select.stage"} {
		if !shown(t, ctx, form+" "+sel) {
			t.Fatalf("without script %s is hidden", sel)
		}
	}
	// A stage of the default pipeline with the Опт pipeline: refused.
	err = chromedp.Do(ctx,
		chromedp.SetValue(form+" select.mode", "crm"),
		chromedp.SetValue(form+" select.entity", "deal"),
		chromedp.SetValue(form+" select.category", "1"),
		chromedp.SetValue(form+" select.stage", "WON"),
		screenshot(t, "app-noscript.png"),
		chromedp.Click(form+" button[type=submit]"))
	if err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, `!!document.querySelector('#notice')`)
	if err := chromedp.Do(ctx, screenshot(t, "app-noscript-refused.png")); err != nil {
		t.Fatal(err)
	}
	notice := evalIn[string](t, ctx, `document.querySelector('#notice').textContent`)
	mode := evalIn[string](t, ctx, `document.querySelector(`+strconv.Quote(form+" select.mode")+`).value`)
	if !strings.Contains(notice, "не относится к выбранной воронке") || mode != "crm" || len(bindingsOf(t, e, integ)) != 0 {
		t.Fatalf("refused save: notice %q, mode %q, bindings %v", notice, mode, bindingsOf(t, e, integ))
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(form+" select.stage", "C1:WON"),
		chromedp.Click(form+" button[type=submit]"))
	if err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, `(document.querySelector('#notice')||{}).textContent=='Сохранено.'`)
	b := bindingsOf(t, e, integ)
	if len(b) != 1 || b[0].(map[string]any)["stage_id"] != "C1:WON" {
		t.Fatalf("binding saved without script: %v", b)
	}
}
