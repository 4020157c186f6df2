package browser_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/test/browsertest"
)

// The simulator's widget pages in a browser, as a person opens them from
// /sim/: the settings page and a lead's and a contact's card, each a page
// of the simulator's origin whose script buys a ticket from the gateway
// with fetch (CORS for real) and frames the gateway's page (its
// frame-ancestors for real). An account the gateway does not know, a
// gateway that is down and a simulator on an origin the gateway does not
// answer each say so in both languages.
func TestAmosimWidgetFramesInBrowser(t *testing.T) {
	ctx := cardBrowser(t)
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	cardInstall(t, e)
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79161234567", "Анна", "Когда доставка?"); err != nil {
		t.Fatal(err)
	}
	e.Eventually("the customer's lead", func() bool { return len(e.Amo.Leads(cardAccount)) == 1 })
	e.WaitIdle()
	lead := e.Amo.Leads(cardAccount)[0]
	if len(lead.ContactIDs) == 0 {
		t.Fatalf("the lead has no contact: %+v", lead)
	}
	open := func(u string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 760), chromedp.Navigate(u)); err != nil {
			t.Fatal(err)
		}
	}
	top := func() string { return browsertest.Eval[string](t, ctx, `document.body.innerText`) }

	// The settings page as the account's admin, in Russian.
	open(e.AmoURL + amosim.FrameSettingsPath + "?" + url.Values{"user": {strconv.Itoa(cardAdmin)}, "lang": {"ru"}}.Encode())
	browsertest.WaitFrame(t, ctx, `!!document.querySelector('#settings-all') && document.documentElement.lang === 'ru'`)
	if ok, err := browsertest.InFrame[bool](ctx, `document.body.innerText.includes('Продажи')`); err != nil || !ok {
		t.Errorf("the settings frame lacks the channel (%v)", err)
	}
	if text := top(); !strings.Contains(text, "Анна Админова") || !strings.Contains(text, "POST "+e.URL+"/amocrm/widget/ticket → 200") {
		t.Errorf("the settings page: %s", text)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amosim-frame-settings.png"))

	// The lead's card as the manager: the conversation in the widget's
	// column, the lead's fields beside it.
	open(e.AmoURL + amosim.FrameCardPath + "?" + url.Values{"user": {strconv.Itoa(cardManager)}, "entity": {"leads"}, "id": {strconv.Itoa(lead.ID)}, "lang": {"ru"}}.Encode())
	browsertest.WaitFrame(t, ctx, `!!document.querySelector('textarea[name=text]') && document.body.innerText.includes('Когда доставка?')`)
	if text := top(); !strings.Contains(text, lead.Name) || !strings.Contains(text, "Иван Менеджеров") {
		t.Errorf("the lead's card: %s", text)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amosim-frame-lead.png"))

	// The contact's card, in English.
	open(e.AmoURL + amosim.FrameCardPath + "?" + url.Values{"user": {strconv.Itoa(cardManager)}, "entity": {"contacts"}, "id": {strconv.Itoa(lead.ContactIDs[0])}, "lang": {"en"}}.Encode())
	browsertest.WaitFrame(t, ctx, `document.documentElement.lang === 'en' && document.body.innerText.includes('Когда доставка?')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "amosim-frame-contact-en.png"))

	errorOf := func(want string) {
		t.Helper()
		browsertest.WaitFor(t, ctx, `!!document.querySelector('#widget-error')`)
		if got := browsertest.Eval[string](t, ctx, `document.querySelector('#widget-error').dataset.error`); got != want {
			t.Fatalf("error %q, want %q: %s", got, want, top())
		}
		if ok, _ := browsertest.InFrame[bool](ctx, `true`); ok {
			t.Error("a frame shows beside the error")
		}
	}

	// An account the gateway does not know.
	other := amosim.ExampleAccount()
	other.ID, other.Subdomain, other.Domain, other.Name = 30999999, "other", "", "Other LLC"
	if err := e.Amo.AddAccount(other); err != nil {
		t.Fatal(err)
	}
	open(e.AmoURL + amosim.FrameSettingsPath + "?account=30999999")
	errorOf("not_connected")
	if text := top(); !strings.Contains(text, "Аккаунт не подключён к Switchboard") || !strings.Contains(text, "The account is not connected to Switchboard") {
		t.Errorf("not connected: %s", text)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amosim-frame-not-connected.png"))

	// A simulator on another origin: the gateway answers, without CORS.
	sim2 := amosim.New(amosim.Options{ClientID: apptest.AmoClientID, ClientSecret: apptest.AmoSecret, RedirectURI: e.URL + "/amocrm/oauth/callback"})
	t.Cleanup(sim2.Close)
	if err := sim2.AddAccount(amosim.ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(sim2)
	t.Cleanup(srv2.Close)
	open(srv2.URL + amosim.FrameSettingsPath)
	errorOf("cors")
	if text := top(); !strings.Contains(text, "SWITCHBOARD_AMOCRM_BASE_URL="+srv2.URL) {
		t.Errorf("cors: %s", text)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amosim-frame-cors.png"))

	// A gateway that is down.
	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()
	sim3 := amosim.New(amosim.Options{ClientID: apptest.AmoClientID, ClientSecret: apptest.AmoSecret, RedirectURI: e.URL + "/amocrm/oauth/callback", GatewayURL: deadURL})
	t.Cleanup(sim3.Close)
	if err := sim3.AddAccount(amosim.ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	srv3 := httptest.NewServer(sim3)
	t.Cleanup(srv3.Close)
	open(srv3.URL + amosim.FrameCardPath + "?entity=leads&id=" + strconv.Itoa(amosim.ExampleAccount().ID)) // no such lead
	if !strings.Contains(top(), "no lead") {
		t.Errorf("an unknown lead: %s", top())
	}
	l3 := sim3.PutLead(cardAccount, amosim.Lead{Name: "Тест", PipelineID: 7000001, StatusID: 61000002})
	open(srv3.URL + amosim.FrameCardPath + "?entity=leads&id=" + strconv.Itoa(l3))
	errorOf("unreachable")
	if text := top(); !strings.Contains(text, "Шлюз "+deadURL+" недоступен") || !strings.Contains(text, "The gateway at "+deadURL+" is not reachable") {
		t.Errorf("unreachable: %s", text)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amosim-frame-unreachable.png"))
}
