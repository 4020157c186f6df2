package browser_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/test/browsertest"
)

// chatEmojiAttached is whether the emoji row is part of the reply box: in
// the send form, right under the text box and no wider than it.
const chatEmojiAttached = `(() => {
  const f = document.querySelector('#chat-form'), em = document.querySelector('#chat-emoji'),
    ta = document.querySelector('#chat-form textarea[name=text]');
  if (!f || !em || !ta || !f.contains(em)) { return false; }
  const a = ta.getBoundingClientRect(), b = em.getBoundingClientRect();
  return Math.abs(b.top - a.bottom) <= 2 && b.left >= a.left - 2 && b.right <= a.right + 2 && b.height > 0;
})()`

// chatTimes are the dates the page shows: the list's rows and the
// messages'.
const chatTimes = `[...document.querySelectorAll('.chat-row .when, .chat .msg .at')].map(e => e.textContent.trim())`

// TestCabinetChatWithoutCRMInBrowser: a workspace bound to no CRM reads
// and answers its customer in the shared chat. The emoji row belongs to
// the reply box in both languages; switching the language keeps the open
// dialog; every date of the page has the language's one format.
func TestCabinetChatWithoutCRMInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(1200, 900), browsertest.Timeout(120*time.Second))
	e := apptest.Start(t, apptest.Options{})
	ws := e.App.DefaultWorkspace.ID
	ch := e.CreateWhatsAppIn(ws)
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79161234567", "Анна Смирнова", "Когда доставка?"); err != nil {
		t.Fatal(err)
	}
	e.WaitIdle()
	apptest.AddUser(t, e, ws, "owner@example.com", "owner", "owner password 1")
	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/chat"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.chat-row')`)
	browsertest.Eval[bool](t, ctx, `document.querySelector('.chat-row').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-form textarea[name=text]')`)

	formats := map[string]*regexp.Regexp{
		"ru": regexp.MustCompile(`^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}$`),
		"en": regexp.MustCompile(`^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{2}:\d{2}$`),
	}
	first := browsertest.Eval[string](t, ctx, `document.documentElement.lang`)
	other := map[string]string{"ru": "en", "en": "ru"}[first]
	if other == "" {
		t.Fatalf("the page's language is %q", first)
	}
	for i, lang := range []string{first, other} {
		if i > 0 {
			browsertest.Eval[bool](t, ctx, `document.querySelector('#lang-switch').click(), true`)
			browsertest.WaitFor(t, ctx, `document.documentElement.lang === `+chatQ(lang)+` && !!document.querySelector('#chat-form textarea')`)
			if !browsertest.Shown(t, ctx, "#chat-name") {
				t.Fatalf("%s: the language switch closed the dialog (%s)", lang, browsertest.Eval[string](t, ctx, `location.href`))
			}
		}
		browsertest.Do(t, ctx, browsertest.Shot(t, "chat-nocrm-"+lang+".png"), browsertest.ElementShot(t, "#chat-send", "chat-reply-"+lang+".png"))
		if !browsertest.Eval[bool](t, ctx, chatEmojiAttached) {
			t.Errorf("%s: the emoji row is not attached under the reply's text box", lang)
		}
		times := browsertest.Eval[[]string](t, ctx, chatTimes)
		if len(times) < 2 {
			t.Errorf("%s: dates %q, want the row's and the message's", lang, times)
		}
		for _, s := range times {
			if !formats[lang].MatchString(s) {
				t.Errorf("%s: date %q is not in the %s format", lang, s, formats[lang])
			}
		}
	}
	// The emoji go into the text, and the answer goes out.
	browsertest.Do(t, ctx, chromedp.SendKeys("#chat-form textarea[name=text]", "Tomorrow "),
		chromedp.Click(`#chat-emoji button[data-emoji="👍"]`))
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-form textarea').value`); got != "Tomorrow 👍" {
		t.Fatalf("text with emoji: %q", got)
	}
	browsertest.Do(t, ctx, chromedp.Click("#chat-form button[type=submit]"))
	browsertest.WaitFor(t, ctx, `[...document.querySelectorAll('.chat .msg.out .text')].some(e => e.textContent === 'Tomorrow 👍')`)
	chatMark(t, ctx)
	// Its status follows without a reload, to read.
	took := browsertest.WaitWithin(t, ctx, 20*time.Second, `[...document.querySelectorAll('#chat-log .msg.out[data-status=read]')].some(m => m.innerText.includes('Tomorrow 👍'))`)
	t.Logf("sent to read tick on the page: %s", took)
	chatKept(t, ctx)

	// The customer's window closes while the chat is open (nothing is
	// stored then): the send box turns to the closed-window banner
	// without a reload.
	if err := e.App.Store.BackdateContactInbound(context.Background(), ch, "79161234567", store.Now().Add(-24*time.Hour+4*time.Second)); err != nil {
		t.Fatal(err)
	}
	browsertest.Do(t, ctx, chromedp.Reload())
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-form textarea') && document.querySelector('#chat-window').hidden`)
	chatMark(t, ctx)
	took = browsertest.WaitWithin(t, ctx, 20*time.Second, `!!document.querySelector('#chat-window') && !document.querySelector('#chat-window').hidden`)
	t.Logf("window closed to banner on the page: %s", took)
	chatKept(t, ctx)
	browsertest.Do(t, ctx, browsertest.ElementShot(t, "#chat-send", "chat-window-closed.png"))
}
