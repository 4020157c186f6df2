package browser_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/test/browsertest"
)

// ownerPW is the password of the cabinet's owner in these tests.
const ownerPW = "owner password 1"

// A person signs in to the cabinet, sees the workspace's channels with
// their states and traffic, switches the language, opens the employees
// page on a phone-sized screen and signs out.
func TestCabinetInBrowser(t *testing.T) {
	ctx := browsertest.New(t)
	e := apptest.Start(t, apptest.Options{})
	ws := e.App.DefaultWorkspace.ID
	if st, b := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"name": "Цветочная лавка", "timezone": "Asia/Almaty"}); st != 200 {
		t.Fatalf("workspace: %d %v", st, b)
	}
	apptest.AddUser(t, e, ws, "owner@example.com", "owner", ownerPW)
	apptest.AddUser(t, e, ws, "manager@example.com", "manager", "manager password")
	wa := e.CreateWhatsApp()
	ig := e.CreateInstagram()
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "77015550101", "Анна", "Здравствуйте! Есть розы?"); err != nil {
		t.Fatal(err)
	}
	e.Eventually("the customer's message stored", func() bool { return len(e.Messages(wa)) == 1 })
	// Meta's own words for a broken token stay as they came.
	if err := e.App.Store.SetChannelState(context.Background(), ig, store.ChannelError, "token expired"); err != nil {
		t.Fatal(err)
	}
	in, _, err := e.App.Store.UpsertIntegration(context.Background(), store.InstallParams{Type: "bitrix24", ExternalID: "m1", Domain: "flowers.bitrix24.ru", WorkspaceID: ws})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.App.Store.SetIntegrationState(context.Background(), in.ID, store.IntegrationNeedsReauth, "refresh token revoked"); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string { return browsertest.Text(t, ctx, sel) }

	// A Russian browser (headless Chromium asks for en-US otherwise).
	browsertest.Do(t, ctx, browsertest.AcceptLanguage("ru-RU,ru;q=0.9,en;q=0.5"))
	start := time.Now()
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#sign-in')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-login.png"),
		chromedp.SendKeys("#email", "owner@example.com"),
		chromedp.SendKeys("#password", ownerPW),
		chromedp.Click("#sign-in"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#channels')`)
	ch := text("#channels")
	for _, want := range []string{"Продажи WA", "whatsapp", "работает", "Instagram", "ошибка", "token expired"} {
		if !strings.Contains(ch, want) {
			t.Errorf("home's channels lack %q:\n%s", want, ch)
		}
	}
	if in := text("#integrations"); !strings.Contains(in, "flowers.bitrix24.ru") || !strings.Contains(in, "нужна повторная авторизация") || !strings.Contains(in, "refresh token revoked") {
		t.Errorf("home's integrations:\n%s", in)
	}
	// The message's time in the workspace's clock (Almaty), and the count.
	m := e.Messages(wa)[0]
	at, _ := time.Parse(time.RFC3339Nano, m["created_at"].(string))
	loc, _ := time.LoadLocation("Asia/Almaty")
	if want := at.In(loc).Format("02.01.2006 15:04"); !strings.Contains(ch, want) {
		t.Errorf("last inbound time %s (Almaty) not shown:\n%s", want, ch)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-home-ru.png"))
	t.Logf("signed in after %v", time.Since(start))

	browsertest.Do(t, ctx, chromedp.Click("#lang-switch"))
	browsertest.WaitFor(t, ctx, `document.documentElement.lang === 'en'`)
	if ch := text("#channels"); !strings.Contains(ch, "active") || !strings.Contains(ch, "Messages in 24 h") {
		t.Errorf("home in English:\n%s", ch)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-home-en.png"))
	// The choice is the user's, kept on the server.
	if us, _ := e.App.Store.CabinetUsersByEmail(context.Background(), "owner@example.com"); len(us) != 1 || us[0].Language != "en" {
		t.Fatalf("language not stored: %+v", us)
	}

	// On a phone: the employees page.
	browsertest.Do(t, ctx, browsertest.Phone(true), chromedp.Navigate(e.URL+"/employees"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#employees')`)
	if emp := text("#employees"); !strings.Contains(emp, "manager@example.com") || !strings.Contains(emp, "owner") {
		t.Errorf("employees:\n%s", emp)
	}
	if wide := browsertest.Eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`); wide {
		t.Error("the employees page is wider than a phone's screen")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-employees-phone.png"),
		chromedp.Navigate(e.URL+"/"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#channels')`)
	if wide := browsertest.Eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`); wide {
		t.Error("the home page is wider than a phone's screen")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "cabinet-home-phone.png"))

	browsertest.Do(t, ctx, chromedp.Click("#sign-out"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#sign-in')`)
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#sign-in')`)
	e.NoPasswordsInLogs(ownerPW, "manager password")
}
