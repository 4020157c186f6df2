package browser_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/test/browsertest"
)

// The shared chat names who wrote each answer: the signed-in colleague
// for their own, "API" for an integration's, in the line under the text.
func TestSharedChatNamesAuthors(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(1200, 800), browsertest.Timeout(90*time.Second))
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	_, ws, ch := cardInstall(t, e)
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79161234567", "Анна Смирнова", "Когда доставка?"); err != nil {
		t.Fatal(err)
	}
	anna := chatDialogOf(t, e, ch, "79161234567")
	e.WaitIdle()
	cardDo(t, e, http.StatusCreated, "POST", "/api/v1/workspaces/"+ws+"/users",
		map[string]any{"email": "owner@example.com", "role": "owner", "password": "owner password 1", "name": "Анна Петрова"})
	cardDo(t, e, http.StatusAccepted, "POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": "79161234567", "text": "Заказ собран."})

	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/chat?d="+anna))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-form textarea[name=text]')`)
	browsertest.Do(t, ctx, chromedp.SendKeys("#chat-form textarea[name=text]", "Завтра с 10 до 14."),
		chromedp.Click("#chat-form button[type=submit]"))
	browsertest.WaitWithin(t, ctx, 20*time.Second, `[].some.call(document.querySelectorAll('#chat-log .msg.out'), function (m) { return m.innerText.indexOf('Завтра с 10 до 14.') >= 0 })`)
	got := browsertest.Eval[string](t, ctx, `[].map.call(document.querySelectorAll('#chat-log .msg.out .meta .author'), function (a) { return a.innerText }).join('|')`)
	if got != "API|Анна Петрова" {
		t.Fatalf("the answers' authors: %q", got)
	}
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#chat-log .msg:not(.out) .meta .author').length`); n != 0 {
		t.Fatalf("%d customer messages name an author", n)
	}
	if meta := browsertest.Eval[string](t, ctx, `[].slice.call(document.querySelectorAll('#chat-log .msg.out .meta')).pop().innerText`); !strings.HasPrefix(meta, "Анна Петрова · ") {
		t.Fatalf("the last answer's line: %q", meta)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "chat-authors.png"))
}
