package browser_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/test/browsertest"

	"github.com/switchboard/switchboard/internal/app/demo"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// TestDemoInBrowser walks the demo as a person does, in a browser: the
// customer writes on the phone page (two ticks) → the message is on the
// Open Line and in the amoCRM lead's chat → the manager answers there and
// the tick turns read → the answer is on the customer's phone → the owner
// signs in to the cabinet with the printed login. Each page is
// screenshotted (DEMO_SCREENSHOTS=$PWD/docs/screenshots for the README).
func TestDemoInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Timeout(2*time.Minute))
	d := demoStart(t)
	const ask, answer = "Здравствуйте! Заказ 4512 ещё в пути?", "Добрый день! Да, курьер привезёт его завтра с 10 до 14."

	// The customer writes.
	browsertest.Do(t, ctx, chromedp.EmulateViewport(1200, 800), chromedp.Navigate(d.PhoneURL()), chromedp.WaitVisible("#text"))
	browsertest.Do(t, ctx, chromedp.Click("form#send button"))
	browsertest.WaitFor(t, ctx, `[...document.querySelectorAll('.m.mine')].some(m => m.dataset.ticks === 'delivered')`)

	// It reaches the Open Line and amoCRM.
	demoEventually(t, "the message on the Open Line", func() bool {
		for _, m := range d.Portal.Line(demo.B24Line).Messages() {
			if m.Direction == b24sim.Inbound && m.Text == ask {
				return true
			}
		}
		return false
	})
	demoEventually(t, "the lead's chat in amoCRM", func() bool {
		cs := d.Amo.Chats(d.AmoAccountID)
		return len(d.Amo.Leads(d.AmoAccountID)) == 1 && len(cs) == 1 && len(cs[0].Messages) == 1
	})

	// The manager answers in amoCRM's chat; the tick turns read.
	browsertest.Do(t, ctx, chromedp.Navigate(d.URLs.Amo+"/sim/"), chromedp.WaitVisible("form.reply input"),
		chromedp.SendKeys("form.reply input", answer), chromedp.Click("form.reply button"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.m.out .t.read')`)
	if text := browsertest.Eval[string](t, ctx, `document.body.innerText`); !strings.Contains(text, ask) || !strings.Contains(text, answer) {
		t.Fatalf("amoCRM's page: %s", text)
	}
	browsertest.Do(t, ctx, demoShot(t, "demo-amocrm.png"))

	// The customer's phone shows the answer.
	browsertest.Do(t, ctx, chromedp.Navigate(d.PhoneURL()), chromedp.WaitVisible("#text"))
	browsertest.WaitFor(t, ctx, `[...document.querySelectorAll('.m:not(.mine)')].some(m => m.textContent.includes(`+strconv.Quote(answer)+`))`)
	browsertest.Do(t, ctx, demoShot(t, "demo-phone.png"))

	// The Open Line's transcript on the portal: the question, and the
	// answer given in amoCRM as a system message for the line's operators.
	browsertest.Do(t, ctx, chromedp.Navigate(d.URLs.B24+"/sim/"))
	browsertest.WaitFor(t, ctx, `document.body.innerText.includes(`+strconv.Quote(ask)+`)`)
	browsertest.WaitFor(t, ctx, `[...document.querySelectorAll('.msg.system')].some(m => m.textContent.includes(`+strconv.Quote("(amoCRM): "+answer)+`))`)
	// As Bitrix24 shows them: BB-code as formatting, not as brackets, and
	// times in the portal's time zone (Moscow), not the browser's (UTC here).
	transcript := browsertest.Eval[string](t, ctx, `document.getElementById('lines').innerText`)
	for _, tag := range []string{"[b]", "[/b]", "[br]", "[url"} {
		if strings.Contains(transcript, tag) {
			t.Errorf("the Open Line shows BB-code %s as text:\n%s", tag, transcript)
		}
	}
	// The page's BB-code, on what the gateway sends (quotes, links in
	// notices) and what an operator may type; a javascript: link gets no
	// href, and a customer's bracket (broken by the gateway) stays text.
	got := browsertest.Eval[string](t, ctx, `bb('[b]Имя[/b][br][QUOTE]вопрос[/QUOTE]ответ [URL=https://example.com/d/1]сделка[/URL] [url=javascript:alert(1)]x[/url] [\u200bb]как есть').innerHTML`)
	want := `<b data-bb="b">Имя</b><br><blockquote data-bb="quote">вопрос</blockquote>ответ <a data-bb="url" target="_blank" rel="noopener" href="https://example.com/d/1">сделка</a> <a data-bb="url" target="_blank" rel="noopener">x</a> [` + "\u200b" + `b]как есть`
	if got != want {
		t.Errorf("BB-code on the Open Line:\n got %s\nwant %s", got, want)
	}
	msk, err := time.LoadLocation(demo.DemoTimezone)
	if err != nil {
		t.Fatal(err)
	}
	clock := browsertest.Eval[string](t, ctx, `document.querySelector('#lines .msg .meta').textContent.slice(0, 5)`)
	if now := time.Now().In(msk); clock != now.Format("15:04") && clock != now.Add(-time.Minute).Format("15:04") && clock != now.Add(-2*time.Minute).Format("15:04") {
		t.Errorf("the Open Line's first message is timed %q, want Moscow's %s", clock, now.Format("15:04"))
	}
	browsertest.Do(t, ctx, demoShot(t, "demo-bitrix24.png"))

	// The widget's card window on the lead, as amoCRM frames it.
	lead := d.Amo.Leads(d.AmoAccountID)[0].ID
	browsertest.Do(t, ctx, chromedp.Navigate(d.URLs.Amo+"/sim/card?lead="+strconv.Itoa(lead)))
	browsertest.WaitFor(t, ctx, `document.body.innerText.includes(`+strconv.Quote(ask)+`)`)
	browsertest.Do(t, ctx, demoShot(t, "demo-amocrm-card.png")) // made for a 360px column; not the README's

	// The owner signs in with the printed login.
	browsertest.Do(t, ctx, chromedp.Navigate(d.URLs.Gateway+"/login"), chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, demo.OwnerEmail), chromedp.SendKeys(`input[name=password]`, d.OwnerPassword),
		chromedp.Click(`form button[type=submit]`))
	browsertest.WaitFor(t, ctx, `location.pathname !== '/login' && document.readyState === 'complete'`)
	if text := browsertest.Eval[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "WhatsApp") {
		t.Fatalf("the cabinet's home: %s", text)
	}
	browsertest.Do(t, ctx, demoShot(t, "demo-cabinet.png"))
}

// TestDemoPhoneOnAPhone opens the customer's phone page on a phone-sized
// screen (390×844): the mock-up takes the width, so a message reads as a
// line of text, not one letter per line.
func TestDemoPhoneOnAPhone(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Timeout(time.Minute))
	d := demoStart(t)
	browsertest.Do(t, ctx, browsertest.Phone(true), chromedp.Navigate(d.PhoneURL()), chromedp.WaitVisible("#text"))
	browsertest.Do(t, ctx, chromedp.Click("form#send button"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.m.mine')`)
	if w := browsertest.Eval[float64](t, ctx, `document.querySelector('.phone').getBoundingClientRect().width`); w < 340 {
		t.Errorf("the phone mock-up is %.0f px wide on a 390 px screen", w)
	}
	if w := browsertest.Eval[float64](t, ctx, `document.querySelector('.m.mine').getBoundingClientRect().width`); w <= 200 {
		t.Errorf("the message bubble is %.0f px wide on a 390 px screen", w)
	}
	if sw := browsertest.Eval[float64](t, ctx, `document.documentElement.scrollWidth`); sw > 390 {
		t.Errorf("the page scrolls sideways: %.0f px wide", sw)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "demo-phone-390.png"))
}
