package browser_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/test/browsertest"
)

// Bitrix24's pages as a person uses them, opened from the simulated
// portal's form.

// customer is the fixtures' customer's number.
const customer = "79161234567"

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

// b24WithWholesale starts a browser and a gateway with the app installed
// on the portal, the fixtures' WhatsApp channel and a second deal
// pipeline "Опт" (id 1). It returns the integration and the selector of
// the channel's binding form on the app's page.
func b24WithWholesale(t *testing.T) (context.Context, *apptest.Env, string, string) {
	t.Helper()
	ctx := browsertest.New(t)
	e := apptest.Start(t, apptest.Options{Bitrix24: true})
	integ, ws := e.InstallBitrix24()
	ch := e.CreateWhatsAppIn(ws)
	if err := e.B24.AddDealCategory(apptest.B24MemberID, b24sim.DealCategory{ID: 1, Name: "Опт", Sort: 400}); err != nil {
		t.Fatal(err)
	}
	return ctx, e, integ, "#bind-" + ch
}

func TestBitrix24AppPageInBrowser(t *testing.T) {
	ctx, e, integ, form := b24WithWholesale(t)
	stages := func() []string {
		return browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll(`+strconv.Quote(form+" select.stage optgroup:not([hidden]) option")+`)].map(o=>o.value)`)
	}

	browsertest.Do(t, ctx, chromedp.Navigate(openAsPortalUser(t, e, e.Portal.AdminUserID(), "DEFAULT", e.URL+"/bitrix24/app", nil)),
		chromedp.WaitVisible(form+" select.mode"),
		// Open Lines: the line shows, the CRM fields do not.
		browsertest.Choose(form+" select.mode", "openlines"),
		browsertest.Shot(t, "app-openlines.png"))
	if !browsertest.Shown(t, ctx, form+" select[name=line_id]") || browsertest.Shown(t, ctx, form+" .f-crm") || browsertest.Shown(t, ctx, form+" select.stage") {
		t.Fatal("Open Lines mode shows the wrong fields")
	}

	// CRM deal in the "Опт" pipeline: only that pipeline's stages.
	browsertest.Do(t, ctx, browsertest.Choose(form+" select.mode", "crm"), browsertest.Choose(form+" select.entity", "deal"), browsertest.Choose(form+" select.category", "1"))
	if browsertest.Shown(t, ctx, form+" select[name=line_id]") || !browsertest.Shown(t, ctx, form+" select.category") || !browsertest.Shown(t, ctx, form+" select.stage") {
		t.Fatal("CRM deal mode shows the wrong fields")
	}
	if got := strings.Join(stages(), ","); got != "C1:NEW,C1:PREPARATION,C1:WON,C1:LOSE" {
		t.Fatalf("stages of the Опт pipeline: %s", got)
	}
	// Opened as a list only for the screenshot, so that the options show.
	browsertest.Do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[int](`document.querySelector(`+strconv.Quote(form+" select.stage")+`).size=7`)(ctx, tg)
		return err
	}), browsertest.Shot(t, "app-crm-deal.png"), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[int](`document.querySelector(`+strconv.Quote(form+" select.stage")+`).size=0`)(ctx, tg)
		return err
	}))

	// The stages follow the pipeline, and a lead gets lead statuses.
	browsertest.Do(t, ctx, browsertest.Choose(form+" select.category", "0"))
	if got := stages(); len(got) != 8 || got[0] != "NEW" {
		t.Fatalf("stages of the default pipeline: %v", got)
	}
	browsertest.Do(t, ctx, browsertest.Choose(form+" select.entity", "lead"))
	if got := stages(); browsertest.Shown(t, ctx, form+" select.category") || len(got) != 5 || got[1] != "IN_PROCESS" {
		t.Fatalf("lead: pipeline shown, or statuses %v", got)
	}

	browsertest.Do(t, ctx, browsertest.Choose(form+" select.entity", "deal"), browsertest.Choose(form+" select.category", "1"), browsertest.Choose(form+" select.stage", "C1:PREPARATION"),
		chromedp.Click(form+" button[type=submit]"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#notice')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "app-saved.png"))
	if notice := browsertest.Eval[string](t, ctx, `document.querySelector('#notice').textContent`); !strings.Contains(notice, "Сохранено") {
		t.Fatalf("after the save: %q", notice)
	}
	b := e.Bindings(integ)
	if len(b) != 1 || b[0].(map[string]any)["mode"] != "crm" || b[0].(map[string]any)["category_id"] != "1" || b[0].(map[string]any)["stage_id"] != "C1:PREPARATION" {
		t.Fatalf("binding after the browser saved it: %v", b)
	}
	// The saved form opens in its mode, with the pipeline's stages.
	if browsertest.Shown(t, ctx, form+" select[name=line_id]") || strings.Join(stages(), ",") != "C1:NEW,C1:PREPARATION,C1:WON,C1:LOSE" {
		t.Fatalf("the saved form: %v", stages())
	}
}

// The card tab: the conversation, a send, and live updates without a
// reload: the sent message's tick turns to read, and the customer's next
// message appears.
func TestBitrix24CardTabInBrowser(t *testing.T) {
	ctx := browsertest.New(t)
	// Statuses come slowly enough to be seen arriving on the open page.
	e := apptest.Start(t, apptest.Options{Bitrix24: true, Sim: func(o *metasim.Options) { o.StatusDelay = 1500 * time.Millisecond }})
	_, ws := e.InstallBitrix24()
	ch := e.CreateWhatsAppIn(ws)
	e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Когда доставка?")
	e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })
	contact := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "8 916 123-45-67", "VALUE_TYPE": "WORK"}}})
	deal := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Заказ 4512", "CONTACT_ID": contact})

	err := chromedp.Do(ctx,
		// The handler is the one the gateway bound for the deal card tab.
		chromedp.Navigate(openAsPortalUser(t, e, 27, "CRM_DEAL_DETAIL_TAB", "", map[string]any{"ID": strconv.Itoa(deal)})),
		chromedp.WaitVisible("textarea[name=text]"),
		browsertest.Shot(t, "tab-opened.png"))
	if err != nil {
		t.Fatal(err)
	}
	if text := browsertest.Eval[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "Когда доставка?") || !strings.Contains(text, "+79161234567") {
		t.Fatalf("card tab: %s", text)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys("textarea[name=text]", "Завтра с 10 до 14."),
		chromedp.Click("button[type=submit]"))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.notice')`)
	err = chromedp.Do(ctx, browsertest.Shot(t, "tab-sent.png"))
	if err != nil {
		t.Fatal(err)
	}
	if text := browsertest.Eval[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "поставлено в очередь") || !strings.Contains(text, "Завтра с 10 до 14.") {
		t.Fatalf("after the send: %s", text)
	}
	path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
	e.Eventually("sent through the Graph API", func() bool { return len(apptest.GraphSends(e.Sim, path)) == 1 })
	liveInBrowser(t, ctx, e, "tab")
}

// liveInBrowser checks a CRM page's live updates in the open page: the
// last sent message's tick turns to read and the customer's new message
// appears, with no reload.
func liveInBrowser(t *testing.T, ctx context.Context, e *apptest.Env, shot string) {
	t.Helper()
	chatMark(t, ctx)
	last := `[...document.querySelectorAll('#chat-log .msg.out')].pop()`
	if st := browsertest.Eval[string](t, ctx, last+`.getAttribute('data-status')`); st == "read" {
		t.Fatalf("the sent message is read before the page could watch it (%s)", st)
	}
	browsertest.WaitFor(t, ctx, last+`.getAttribute('data-status') === 'read' && !!`+last+`.querySelector('.tick-read')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, shot+"-live-read.png"))
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "А можно к 12?"); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.querySelector('#chat-log').innerText.includes('А можно к 12?')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, shot+"-live-inbound.png"))
	chatKept(t, ctx)
	if browsertest.Shown(t, ctx, "#chat-live-lost") {
		t.Fatal("the page says the connection is lost")
	}
	// The customer's window closes (her last message a day old) and a
	// change comes: the send box turns to the banner; she writes again and
	// the text box is back, with no reload.
	if err := e.App.DB.Gorm.Model(&store.Contact{}).Where("external_id = ?", customer).Update("last_inbound_at", time.Now().Add(-25*time.Hour)).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.App.DB.Gorm.Model(&store.Message{}).Where("direction = ?", "in").Update("updated_at", store.Now()).Error; err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `!document.querySelector('#chat-window').hidden && document.querySelector('#chat-free').hidden`)
	browsertest.Do(t, ctx, browsertest.Shot(t, shot+"-live-closed.png"))
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Жду ответа"); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.querySelector('#chat-log').innerText.includes('Жду ответа') && document.querySelector('#chat-window').hidden && !document.querySelector('#chat-free').hidden`)
	browsertest.Do(t, ctx, browsertest.Shot(t, shot+"-live-reopened.png"))
	chatKept(t, ctx)
}

// Without script every field shows and the save still works; a refused
// save comes back worded in the page's language with the chosen mode.
func TestBitrix24AppPageWithoutScript(t *testing.T) {
	ctx, e, integ, form := b24WithWholesale(t)
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
	browsertest.WaitFor(t, ctx, `!!document.querySelector(`+strconv.Quote(form)+`)`)
	for _, sel := range []string{"select[name=line_id]", "select.category", "select.stage"} {
		if !browsertest.Shown(t, ctx, form+" "+sel) {
			t.Fatalf("without script %s is hidden", sel)
		}
	}
	// A stage of the default pipeline with the Опт pipeline: refused.
	err = chromedp.Do(ctx,
		chromedp.SetValue(form+" select.mode", "crm"),
		chromedp.SetValue(form+" select.entity", "deal"),
		chromedp.SetValue(form+" select.category", "1"),
		chromedp.SetValue(form+" select.stage", "WON"),
		browsertest.Shot(t, "app-noscript.png"),
		chromedp.Click(form+" button[type=submit]"))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#notice')`)
	if err := chromedp.Do(ctx, browsertest.Shot(t, "app-noscript-refused.png")); err != nil {
		t.Fatal(err)
	}
	notice := browsertest.Eval[string](t, ctx, `document.querySelector('#notice').textContent`)
	mode := browsertest.Eval[string](t, ctx, `document.querySelector(`+strconv.Quote(form+" select.mode")+`).value`)
	if !strings.Contains(notice, "не относится к выбранной воронке") || mode != "crm" || len(e.Bindings(integ)) != 0 {
		t.Fatalf("refused save: notice %q, mode %q, bindings %v", notice, mode, e.Bindings(integ))
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(form+" select.stage", "C1:WON"),
		chromedp.Click(form+" button[type=submit]"))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `(document.querySelector('#notice')||{}).textContent=='Сохранено.'`)
	b := e.Bindings(integ)
	if len(b) != 1 || b[0].(map[string]any)["stage_id"] != "C1:WON" {
		t.Fatalf("binding saved without script: %v", b)
	}
}
