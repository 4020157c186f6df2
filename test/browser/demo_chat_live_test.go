package browser_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/demo"
	"github.com/switchboard/switchboard/test/browsertest"
)

// TestDemoChatFollowsInBrowser: in the demo, the owner answers the
// customer in the shared chat and, without a reload, sees the answer's
// tick turn to read and, when the phone page closes the customer's
// 24-hour window, the closed-window banner.
func TestDemoChatFollowsInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(1200, 900), browsertest.Timeout(2*time.Minute))
	d := demoStart(t)
	browsertest.Do(t, ctx, chromedp.Navigate(d.PhoneURL()), chromedp.WaitVisible("#text"))
	browsertest.Do(t, ctx, chromedp.Click("form#send button"))
	demoEventually(t, "the dialog", func() bool { return demoDialog(t, d) != "" })

	browsertest.Do(t, ctx, chromedp.Navigate(d.URLs.Gateway+"/login"), chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, demo.OwnerEmail), chromedp.SendKeys(`input[name=password]`, d.OwnerPassword),
		chromedp.Click(`form button[type=submit]`))
	browsertest.WaitFor(t, ctx, `location.pathname !== '/login' && document.readyState === 'complete'`)
	browsertest.Do(t, ctx, chromedp.Navigate(d.URLs.Gateway+"/chat?d="+demoDialog(t, d)))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-form textarea[name=text]') && document.querySelector('#chat-window').hidden`)
	chatMark(t, ctx)
	browsertest.Do(t, ctx, chromedp.SendKeys("#chat-form textarea[name=text]", "Answer from the cabinet"),
		chromedp.Click("#chat-form button[type=submit]"))
	took := browsertest.WaitWithin(t, ctx, 30*time.Second, `[...document.querySelectorAll('#chat-log .msg.out[data-status=read]')].some(m => m.innerText.includes('Answer from the cabinet'))`)
	t.Logf("sent to read tick: %s", took)
	// Everything the answer set off is over (the read marks, the CRMs'
	// copies): nothing else moves the page from now on.
	time.Sleep(3 * time.Second)
	if err := d.CloseWindow(context.Background()); err != nil {
		t.Fatal(err)
	}
	took = browsertest.WaitWithin(t, ctx, 30*time.Second, `!!document.querySelector('#chat-window') && !document.querySelector('#chat-window').hidden`)
	t.Logf("window closed to banner: %s", took)
	chatKept(t, ctx)
}
