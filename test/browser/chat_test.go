package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/test/browsertest"
)

// chatDialogOf is the id of the customer's dialog on the channel.
func chatDialogOf(t *testing.T, e *apptest.Env, ch, waID string) string {
	t.Helper()
	var id string
	e.Eventually("the customer's dialog", func() bool {
		_, body := e.Do("GET", "/api/v1/dialogs?limit=500&channel_id="+ch, nil)
		items, _ := body["data"].([]any)
		for _, v := range items {
			d := v.(map[string]any)
			if c, _ := d["customer"].(map[string]any); c != nil && c["id"] == waID {
				id = d["id"].(string)
			}
		}
		return id != ""
	})
	return id
}

// TestSharedChatInBrowser: the owner signs in, opens the shared chat,
// answers a customer and sees the tick turn to read and the customer's
// next message arrive without the page reloading; a customer whose
// window is closed gets a template with its variables; a manager whose
// access becomes read-only loses the send box.
func TestSharedChatInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(1200, 900), browsertest.Timeout(120*time.Second))
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	integ, ws, ch := cardInstall(t, e)
	bg := context.Background()
	if _, err := e.Sim.SendWhatsAppText(bg, apptest.PhoneNumberID, "79161234567", "Анна Смирнова", "Когда доставка?"); err != nil {
		t.Fatal(err)
	}
	anna := chatDialogOf(t, e, ch, "79161234567")
	e.WaitIdle()
	apptest.AddUser(t, e, ws, "owner@example.com", "owner", "owner password 1")
	mgr := apptest.AddUser(t, e, ws, "manager@example.com", "manager", "manager password")
	cardDo(t, e, http.StatusOK, "PUT", "/api/v1/workspaces/"+ws+"/users/"+mgr+"/crm_links", map[string]any{integ: strconv.Itoa(cardManager)})

	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")
	browsertest.Eval[bool](t, ctx, `document.querySelector('#nav-chat').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.chat-row')`)
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('.chat-row').innerText`); !strings.Contains(got, "Анна Смирнова") || !strings.Contains(got, "1") {
		t.Fatalf("the list's row: %q", got)
	}
	// A click that navigates is made by the page's own click(): the
	// driver's Click waits on the old document.
	browsertest.Do(t, ctx, browsertest.Shot(t, "chat-list.png"))
	browsertest.Eval[bool](t, ctx, `document.querySelector('.chat-row').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-form textarea[name=text]')`)
	chatMark(t, ctx)
	// The emoji go into the text where the cursor is.
	browsertest.Do(t, ctx, chromedp.SendKeys("#chat-form textarea[name=text]", "Завтра с 10 до 14 "),
		chromedp.Click(`#chat-emoji button[data-emoji="👍"]`))
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-form textarea').value`); got != "Завтра с 10 до 14 👍" {
		t.Fatalf("text with emoji: %q", got)
	}
	if !browsertest.Shown(t, ctx, "#chat-waiting") {
		t.Fatal("the header does not say Анна waits")
	}
	browsertest.Do(t, ctx, chromedp.Click("#chat-form button[type=submit]"))
	// The answer ends the wait: the header says so, as the list does.
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelector('#chat-waiting').hidden && !document.querySelector('.chat-row .wait')`)
	took := browsertest.WaitWithin(t, ctx, 20*time.Second, `[].some.call(document.querySelectorAll('#chat-log .msg.out[data-status=read]'), function (m) { return m.innerText.indexOf('Завтра с 10 до 14 👍') >= 0 })`)
	t.Logf("sent to read tick on the page: %s", took)
	browsertest.Do(t, ctx, browsertest.Shot(t, "chat-read.png"))
	chatKept(t, ctx)
	if browsertest.Eval[string](t, ctx, `document.querySelector('#chat-form textarea').value`) != "" {
		t.Fatal("the send box keeps the sent text")
	}
	// The customer answers: it shows without a reload.
	if _, err := e.Sim.SendWhatsAppText(bg, apptest.PhoneNumberID, "79161234567", "Анна Смирнова", "Спасибо, жду!"); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelector('#chat-log').innerText.indexOf('Спасибо, жду!') >= 0`)
	browsertest.WaitWithin(t, ctx, 20*time.Second, `!document.querySelector('#chat-waiting').hidden`)
	chatKept(t, ctx)

	// A customer who wrote three days ago: the banner and the template
	// picker asking for the template's variables.
	if _, err := e.Sim.SendWhatsAppText(bg, apptest.PhoneNumberID, "77071234567", "Ерлан", "Добрый день"); err != nil {
		t.Fatal(err)
	}
	erlan := chatDialogOf(t, e, ch, "77071234567")
	e.WaitIdle()
	if err := e.App.DB.Gorm.Model(&store.Contact{}).Where("external_id = ?", "77071234567").Update("last_inbound_at", time.Now().Add(-72*time.Hour)).Error; err != nil {
		t.Fatal(err)
	}
	path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
	before := graphPosts(e.Sim, path)
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/chat?d="+erlan))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-tpl')`)
	if !browsertest.Shown(t, ctx, "#chat-window") {
		t.Fatal("no closed-window banner")
	}
	chatMark(t, ctx)
	field := func(i int) string { return `input[name="tv|order_update|ru|` + strconv.Itoa(i) + `"]` }
	browsertest.Do(t, ctx, browsertest.Choose("#chat-tpl", ch+"|order_update|ru"))
	if !browsertest.Shown(t, ctx, field(1)) || !browsertest.Shown(t, ctx, field(2)) || browsertest.Shown(t, ctx, "#chat-form textarea[name=text]") {
		t.Fatal("the chosen template's variables do not show, or the text box still does")
	}
	browsertest.Do(t, ctx, chromedp.SendKeys(field(1), "Ерлан"), chromedp.SendKeys(field(2), "A-4513"),
		browsertest.Shot(t, "chat-template.png"), chromedp.Click("#chat-form button[type=submit]"))
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelectorAll('#chat-log .msg.out').length == 1`)
	e.Eventually("template sent", func() bool { return graphPosts(e.Sim, path) == before+1 })
	chatKept(t, ctx)
	// Ерлан writes again: his window opens, and without a reload the
	// banner goes, the text box comes and "no reply needed" shows; what
	// the user typed meanwhile stays.
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelector('#chat-no-reply-form') && document.querySelector('#chat-no-reply-form').hidden`)
	browsertest.Do(t, ctx, chromedp.SendKeys(field(1), "черновик"))
	if _, err := e.Sim.SendWhatsAppText(bg, apptest.PhoneNumberID, "77071234567", "Ерлан", "А когда привезёте?"); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelector('#chat-log').innerText.indexOf('А когда привезёте?') >= 0`)
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelector('#chat-window').hidden && !!document.querySelector('#chat-form textarea[name=text]') && !document.querySelector('#chat-free').hidden`)
	browsertest.WaitWithin(t, ctx, 20*time.Second, `!document.querySelector('#chat-no-reply-form').hidden`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "chat-window-opened.png"))
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('`+field(1)+`').value`); got != "черновик" {
		t.Fatalf("the typed variable after the window opened: %q", got)
	}
	chatKept(t, ctx)
	browsertest.Do(t, ctx, chromedp.SendKeys("#chat-form textarea[name=text]", "Завтра"), chromedp.Click("#chat-form button[type=submit]"))
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelectorAll('#chat-log .msg.out').length == 2`)
	chatKept(t, ctx)

	// A manager with send access, then read-only.
	browsertest.Eval[bool](t, ctx, `document.querySelector('#sign-out').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#email')`)
	chatSignIn(t, ctx, e, "manager@example.com", "manager password")
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/chat?d="+anna))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-form')`)
	cardDo(t, e, http.StatusOK, "PUT", "/api/v1/integrations/"+integ+"/settings",
		map[string]any{"access": []map[string]any{{"user_id": strconv.Itoa(cardManager), "channels": map[string]string{ch: "read"}}}})
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/chat?d="+anna))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-read-only')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "chat-read-only.png"))
	if browsertest.Shown(t, ctx, "#chat-form") || browsertest.Shown(t, ctx, "textarea[name=text]") || browsertest.Shown(t, ctx, "#chat-emoji") {
		t.Fatal("a read-only manager sees the send box")
	}
	if text := browsertest.Eval[string](t, ctx, `document.body.innerText`); !strings.Contains(text, "Когда доставка?") {
		t.Fatalf("read-only: %s", text)
	}
	// A phone: the list, then the dialog alone.
	browsertest.Do(t, ctx, chromedp.EmulateViewport(375, 740), chromedp.Navigate(e.URL+"/chat"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.chat-row')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "chat-phone-list.png"), chromedp.Navigate(e.URL+"/chat?d="+anna))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-log')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "chat-phone-dialog.png"))
	if w := browsertest.Eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 375 {
		t.Fatalf("the dialog is %dpx wide on a 375px phone", w)
	}
}

// TestSharedChatUnderLoad: 50 customers write 10 messages a second in
// all while the shared chat is open; the list keeps up (every message
// counted as unread, the last writer on top) and the page never reloads.
func TestSharedChatUnderLoad(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(1200, 900), browsertest.Timeout(180*time.Second))
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	_, ws, _ := cardInstall(t, e)
	bg := context.Background()
	const customers, rate, seconds = 50, 10, 15
	wa := func(i int) string { return fmt.Sprintf("7916555%04d", i) }
	// Each customer's first message makes their dialog.
	for i := 0; i < customers; i++ {
		if _, err := e.Sim.SendWhatsAppText(bg, apptest.PhoneNumberID, wa(i), fmt.Sprintf("Клиент %02d", i), "Здравствуйте"); err != nil {
			t.Fatal(err)
		}
	}
	e.WaitIdle()
	apptest.AddUser(t, e, ws, "owner@example.com", "owner", "owner password 1")
	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/chat"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.chat-row')`)
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('.chat-row').length`); n != customers {
		t.Fatalf("%d dialogs listed, want %d", n, customers)
	}
	chatMark(t, ctx)

	// 10 messages a second, round the customers, for 15 seconds.
	var sent atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	var lastWA string
	var lateRows []int
	start := time.Now()
	for k := 0; k < rate*seconds; k++ {
		<-tick.C
		i := k % customers
		lastWA = wa(i)
		wg.Add(1)
		go func(k, i int) {
			defer wg.Done()
			if _, err := e.Sim.SendWhatsAppText(bg, apptest.PhoneNumberID, wa(i), fmt.Sprintf("Клиент %02d", i), fmt.Sprintf("сообщение %d", k)); err != nil {
				t.Error(err)
				return
			}
			sent.Add(1)
		}(k, i)
		if k%(rate*3) == 0 {
			// The list stays live while the load goes on: its unread
			// total grows.
			lateRows = append(lateRows, browsertest.Eval[int](t, ctx, `[].reduce.call(document.querySelectorAll('.chat-row .badge'), function (s, b) { return s + (+b.textContent) }, 0)`))
		}
	}
	tick.Stop()
	wg.Wait()
	t.Logf("%d messages in %s", sent.Load(), time.Since(start).Round(time.Millisecond))
	for i := 1; i < len(lateRows); i++ {
		if lateRows[i] <= lateRows[i-1] {
			t.Fatalf("the list stood still under load: unread totals %v", lateRows)
		}
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "chat-load.png"))
	// Every message shows as unread (each customer's first one too), the
	// last writer on top.
	want := customers + int(sent.Load())
	caught := browsertest.WaitWithin(t, ctx, 30*time.Second, `[].reduce.call(document.querySelectorAll('.chat-row .badge'), function (s, b) { return s + (+b.textContent) }, 0) == `+strconv.Itoa(want))
	t.Logf("the list caught up %s after the last message (unread totals during the load: %v)", caught, lateRows)
	last := lastWA[len(lastWA)-2:]
	if top := browsertest.Eval[string](t, ctx, `document.querySelector('.chat-row .who').innerText`); top != "Клиент "+last {
		t.Fatalf("top of the list: %q, want Клиент %s", top, last)
	}
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('.chat-row').length`); n != customers {
		t.Fatalf("%d dialogs listed after the load", n)
	}
	chatKept(t, ctx)
}
