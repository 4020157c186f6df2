package browser_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/demo"
	"github.com/switchboard/switchboard/test/browsertest"
)

// TestDemoCloseWindowInBrowser: in a browser whose locale writes "6:05
// PM", the phone page shows 24-hour times; its "close the 24-hour window
// (demo)" button makes the customer's message a day old, and the shared
// chat then shows the closed-window banner and the template picker.
func TestDemoCloseWindowInBrowser(t *testing.T) {
	// The browser first, so the demo stops while the chat's event stream
	// is still open: its shutdown must end the stream, not wait it out.
	ctx := browsertest.New(t, browsertest.Timeout(2*time.Minute))
	d := demoStart(t)
	browsertest.Do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "en-US"})
		return err
	}))

	browsertest.Do(t, ctx, chromedp.EmulateViewport(1200, 800), chromedp.Navigate(d.PhoneURL()), chromedp.WaitVisible("#text"))
	browsertest.Do(t, ctx, chromedp.Click("form#send button"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.m.mine .meta')`)
	if meta := browsertest.Text(t, ctx, ".m.mine .meta"); !regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d\b`).MatchString(meta) || strings.Contains(meta, "M") {
		t.Fatalf("the phone's time %q is not 24-hour", meta)
	}
	if label := browsertest.Text(t, ctx, "#close-window"); !strings.Contains(label, "Закрыть 24-часовое окно (демо)") || !strings.Contains(label, "Close the 24-hour window (demo)") {
		t.Fatalf("the button reads %q", label)
	}
	demoEventually(t, "the dialog", func() bool { return demoDialog(t, d) != "" })
	browsertest.Do(t, ctx, chromedp.Click("#close-window"))
	browsertest.WaitFor(t, ctx, `document.getElementById('notice').textContent.includes('Окно закрыто')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "demo-phone-window-closed.png"))

	browsertest.Do(t, ctx, chromedp.Navigate(d.URLs.Gateway+"/login"), chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, demo.OwnerEmail), chromedp.SendKeys(`input[name=password]`, d.OwnerPassword),
		chromedp.Click(`form button[type=submit]`))
	browsertest.WaitFor(t, ctx, `location.pathname !== '/login' && document.readyState === 'complete'`)
	browsertest.Do(t, ctx, chromedp.Navigate(d.URLs.Gateway+"/chat?d="+demoDialog(t, d)))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-tpl')`)
	if !browsertest.Shown(t, ctx, "#chat-window") || !browsertest.Shown(t, ctx, "#chat-tpl") {
		t.Fatal("no closed-window banner or template picker after closing the window")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "demo-chat-window-closed.png"))
}

// demoDialog is the id of a dialog of the demo's customer ("" before
// there is one).
func demoDialog(t *testing.T, d *demo.Demo) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, d.URLs.Gateway+"/api/v1/dialogs?channel_id="+d.WhatsAppID, nil)
	req.Header.Set("Authorization", "Bearer "+d.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || len(v.Data) == 0 {
		return ""
	}
	return v.Data[0].ID
}
