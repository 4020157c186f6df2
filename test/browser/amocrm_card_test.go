package browser_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/test/browsertest"
)

// graphPosts counts the Graph API calls of a path.
func graphPosts(sim *metasim.Server, path string) int {
	n := 0
	for _, r := range sim.Requests() {
		if r.Method == http.MethodPost && r.Path == path && !r.IsReadMark() {
			n++
		}
	}
	return n
}

// TestAmoCRMCardWindowInBrowser: the widget's card window in a card-column
// sized browser: the conversation, a text sent, a template chosen for a
// customer whose window is closed (its variables asked for), and a
// read-only user who sees no send box.
func TestAmoCRMCardWindowInBrowser(t *testing.T) {
	ctx := cardBrowser(t)
	// Statuses come slowly enough to be seen arriving on the open page.
	e := apptest.Start(t, apptest.Options{AmoCRM: true, Sim: func(o *metasim.Options) { o.StatusDelay = 1500 * time.Millisecond }})
	integ, ws, ch := cardInstall(t, e)
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79161234567", "Анна", "Когда доставка?"); err != nil {
		t.Fatal(err)
	}
	e.Eventually("the customer's lead", func() bool { return len(e.Amo.Leads(cardAccount)) == 1 })
	e.WaitIdle()
	lead := e.Amo.Leads(cardAccount)[0].ID
	path := "/v25.0/" + apptest.PhoneNumberID + "/messages"

	// amoCRM's card column: narrow, the widget's frame 520px high.
	browsertest.Do(t, ctx, chromedp.EmulateViewport(360, 520),
		chromedp.Navigate(cardURL(t, e, cardManager, lead, "ru")),
		chromedp.WaitVisible("textarea[name=text]"),
		browsertest.Shot(t, "amo-card-opened.png"))
	if text := browsertest.Eval[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "Когда доставка?") || !strings.Contains(text, "+79161234567") {
		t.Fatalf("card window: %s", text)
	}
	// It fits the card column: nothing wider than the window, the send
	// button within the 520px frame.
	if w := browsertest.Eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 360 {
		t.Fatalf("the window is %dpx wide in a 360px column", w)
	}
	if b := browsertest.Eval[float64](t, ctx, `document.querySelector('button[type=submit]').getBoundingClientRect().bottom`); b > 520 {
		t.Fatalf("the send button is at %vpx, below the 520px frame", b)
	}
	if browsertest.Shown(t, ctx, "#chat-window") {
		t.Fatal("the closed-window banner shows for a customer who just wrote")
	}
	browsertest.Do(t, ctx, chromedp.SendKeys("textarea[name=text]", "Завтра с 10 до 14."),
		chromedp.Click("button[type=submit]"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-notice')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "amo-card-sent.png"))
	if text := browsertest.Eval[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "поставлено в очередь") || !strings.Contains(text, "Завтра с 10 до 14.") {
		t.Fatalf("after the send: %s", text)
	}
	e.Eventually("sent through the Graph API", func() bool { return graphPosts(e.Sim, path) == 1 })
	liveInBrowser(t, ctx, e, "amo-card")

	// The cabinet's quick replies, with the same picker: one picked fills
	// in its text, and the server attaches its file.
	cardQuickReply(t, e, ws, "Прайс", "Прайс-лист во вложении.", "price.pdf")
	browsertest.Do(t, ctx, chromedp.Navigate(cardURL(t, e, cardManager, lead, "ru")), chromedp.WaitVisible("#chat-quick"))
	id := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-quick option[data-file="price.pdf"]').value`)
	browsertest.Do(t, ctx, browsertest.Choose("#chat-quick", id))
	if got := browsertest.Eval[string](t, ctx, `document.getElementById('chat-form').elements.text.value`); got != "Прайс-лист во вложении." {
		t.Fatalf("the quick reply did not fill the text: %q", got)
	}
	if !browsertest.Shown(t, ctx, "#chat-quick-file") || !strings.Contains(browsertest.Text(t, ctx, "#chat-quick-file"), "price.pdf") {
		t.Fatal("the window does not say which file goes with the reply")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amo-card-quick.png"), chromedp.Click("button[type=submit]"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-notice') && document.querySelector('#chat-notice').innerText.includes('очередь')`)
	e.Eventually("the quick reply sent", func() bool { return graphPosts(e.Sim, path) == 2 })
	if sends := apptest.GraphSends(e.Sim, path); !strings.Contains(string(sends[len(sends)-1].Body), `"type":"document"`) {
		t.Fatalf("the quick reply went without its file: %s", sends[len(sends)-1].Body)
	}

	// A lead whose contact never wrote: the banner, and the template picker
	// asking for the chosen template's variables only.
	contact := e.Amo.PutContact(cardAccount, amosim.Contact{Name: "Ерлан", Phones: []amosim.Value{{Value: "+7 707 123 45 67", EnumCode: "WORK"}}})
	second := e.Amo.PutLead(cardAccount, amosim.Lead{Name: "Новый", StatusID: 61000002, PipelineID: 7000001, ContactIDs: []int{contact}})
	browsertest.Do(t, ctx, chromedp.Navigate(cardURL(t, e, cardManager, second, "ru")),
		chromedp.WaitVisible("#chat-tpl"))
	if !browsertest.Shown(t, ctx, "#chat-window") || !strings.Contains(browsertest.Eval[string](t, ctx, `document.querySelector('#chat-window').innerText`), "только шаблон") {
		t.Fatal("no closed-window banner")
	}
	pick := ch + "|order_update|ru"
	field := func(i int) string { return `input[name="tv|order_update|ru|` + strconv.Itoa(i) + `"]` }
	// The window is closed: the first template is chosen, its variables
	// asked for, and there is no free text to type (nor "no template").
	if v := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-tpl').value`); v != pick {
		t.Fatalf("the closed window's template is %q, want %q", v, pick)
	}
	if !browsertest.Shown(t, ctx, field(1)) || !browsertest.Shown(t, ctx, field(2)) || browsertest.Shown(t, ctx, "textarea[name=text]") ||
		!browsertest.Eval[bool](t, ctx, `document.querySelector('#chat-tpl-none').disabled`) {
		t.Fatal("the chosen template's variables do not show, or the text box or \"no template\" still does")
	}
	// The template left out (a header variable) is named.
	if !browsertest.Shown(t, ctx, "#chat-tpl-omitted") || !strings.Contains(browsertest.Eval[string](t, ctx, `document.querySelector('#chat-tpl-omitted').innerText`), "spring_sale") {
		t.Fatal("the left-out template is not named")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amo-card-closed.png"))
	// One variable left empty: refused, and the choice and what was typed
	// stay.
	browsertest.Do(t, ctx, chromedp.SendKeys(field(1), "Ерлан"), chromedp.Click("button[type=submit]"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-notice')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "amo-card-template-refused.png"))
	if text := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-notice').innerText`); !strings.Contains(text, "Заполните все переменные") {
		t.Fatalf("a template with a variable left empty: %s", text)
	}
	if v, typed := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-tpl').value`), browsertest.Eval[string](t, ctx, `document.querySelector('`+field(1)+`').value`); v != pick || typed != "Ерлан" ||
		browsertest.Shown(t, ctx, "textarea[name=text]") {
		t.Fatalf("after the refusal the template is %q and its first variable %q", v, typed)
	}
	browsertest.Do(t, ctx, chromedp.SendKeys(field(2), "A-4513"),
		browsertest.Shot(t, "amo-card-template.png"),
		chromedp.Click("button[type=submit]"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-notice') && document.querySelector('#chat-notice').innerText.includes('очередь')`)
	// The sent template reads as the customer got it.
	if text := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-log').innerText`); !strings.Contains(text, "Здравствуйте, Ерлан! Заказ A-4513 передан в доставку.") || strings.Contains(text, "[template") {
		t.Fatalf("the sent template in the history: %s", text)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amo-card-template-sent.png"))
	e.Eventually("template sent", func() bool { return graphPosts(e.Sim, path) == 3 })

	// A read-only user: the conversation, no send box, and why.
	cardDo(t, e, http.StatusOK, "PUT", "/api/v1/integrations/"+integ+"/settings",
		map[string]any{"access": []map[string]any{{"user_id": strconv.Itoa(cardManager), "channels": map[string]string{ch: "read"}}}})
	browsertest.Do(t, ctx, chromedp.Navigate(cardURL(t, e, cardManager, lead, "ru")),
		chromedp.WaitVisible("#chat-read-only"),
		browsertest.Shot(t, "amo-card-read-only.png"))
	if browsertest.Shown(t, ctx, "#chat-form") || browsertest.Shown(t, ctx, "textarea[name=text]") {
		t.Fatal("a read-only user sees the send box")
	}
	if text := browsertest.Eval[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "Когда доставка?") || !strings.Contains(text, "только просмотр") ||
		!strings.Contains(text, "администратор аккаунта amoCRM") {
		t.Fatalf("read-only: %s", text)
	}
}
