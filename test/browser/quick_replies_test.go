package browser_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/test/browsertest"
)

// TestQuickReplyInBrowser: the owner adds a quick reply with a file on
// the Templates page, opens the shared chat, picks it (its text fills the
// box and the page says which file goes with it) and sends it: the
// customer gets the text and the stored file.
func TestQuickReplyInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(1200, 900), browsertest.Timeout(90*time.Second))
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	_, ws, ch := cardInstall(t, e)
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79161234567", "Анна Смирнова", "Пришлите прайс, пожалуйста"); err != nil {
		t.Fatal(err)
	}
	anna := chatDialogOf(t, e, ch, "79161234567")
	e.WaitIdle()
	apptest.AddUser(t, e, ws, "owner@example.com", "owner", "owner password 1")
	pdf := filepath.Join(t.TempDir(), "price-2026.pdf")
	body := []byte("%PDF-1.4\n1 0 obj <<>> endobj\nprice list\n%%EOF\n")
	if err := os.WriteFile(pdf, body, 0o644); err != nil {
		t.Fatal(err)
	}

	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")
	browsertest.Eval[bool](t, ctx, `document.querySelector('#nav-templates').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#quick-add')`)
	browsertest.Do(t, ctx,
		chromedp.SendKeys(`#quick-add input[name=title]`, "Прайс"),
		chromedp.SendKeys(`#quick-add textarea[name=text]`, "Здравствуйте! Прайс-лист во вложении."),
		chromedp.SetUploadFiles(`#quick-add input[type=file]`, []string{pdf}))
	browsertest.Eval[bool](t, ctx, `document.querySelector('#quick-add button[type=submit]').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#notice') && document.querySelector('#quick-list').innerText.indexOf('price-2026.pdf') >= 0`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "quick-replies.png"))

	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/chat?d="+anna))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-quick')`)
	chatMark(t, ctx)
	id := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-quick option[data-file="price-2026.pdf"]').value`)
	browsertest.Do(t, ctx, browsertest.Choose("#chat-quick", id))
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('#chat-form textarea[name=text]').value`); got != "Здравствуйте! Прайс-лист во вложении." {
		t.Fatalf("the quick reply did not fill the text: %q", got)
	}
	if !browsertest.Shown(t, ctx, "#chat-quick-file") || !strings.Contains(browsertest.Eval[string](t, ctx, `document.querySelector('#chat-quick-file').innerText`), "price-2026.pdf") {
		t.Fatal("the page does not say which file goes with the reply")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "quick-reply-picked.png"), chromedp.Click("#chat-form button[type=submit]"))
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelectorAll('#chat-log .msg.out').length == 1`)
	chatKept(t, ctx)
	browsertest.Do(t, ctx, browsertest.Shot(t, "quick-reply-sent.png"))
	var out map[string]any
	for _, m := range e.Messages(ch) {
		if m["direction"] == "out" {
			out = m
		}
	}
	md, _ := out["media"].(map[string]any)
	if out == nil || out["type"] != "document" || md == nil || md["size"] != float64(len(body)) {
		t.Fatalf("the quick reply went without its file: %v", out)
	}
	if browsertest.Shown(t, ctx, "#chat-quick-file") || browsertest.Eval[string](t, ctx, `document.querySelector('#chat-quick').value`) != "" {
		t.Fatal("the picked quick reply stays after the send")
	}
}

// TestPeopleAndChannelsPagesInBrowser: the employees page's edit form,
// one's own account page and the channels page's last webhook render
// (screenshots), and an owner resets a manager's password in the page.
func TestPeopleAndChannelsPagesInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(1200, 900), browsertest.Timeout(60*time.Second))
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	_, ws, _ := cardInstall(t, e)
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79161234567", "Анна", "Добрый день"); err != nil {
		t.Fatal(err)
	}
	e.WaitIdle()
	apptest.AddUser(t, e, ws, "owner@example.com", "owner", "owner password 1")
	mgr := apptest.AddUser(t, e, ws, "manager@example.com", "manager", "manager password")
	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")

	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/channels"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('.last-webhook')`)
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('.last-webhook').innerText`); got == "—" || got == "" {
		t.Fatalf("the channel's last webhook: %q", got)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "channels-last-webhook.png"))

	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/employees"))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#edit-`+mgr+`')`)
	browsertest.Eval[bool](t, ctx, `document.querySelector('#edit-`+mgr+`').open = true, true`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "employees-edit.png"))
	browsertest.Eval[bool](t, ctx, `document.querySelector('#edit-`+mgr+` .reset-form button').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#generated')`)
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('#generated').innerText`); len(got) != 16 {
		t.Fatalf("the generated password: %q", got)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "employees-reset.png"))

	browsertest.Eval[bool](t, ctx, `document.querySelector('#nav-account').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#own-password')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "account.png"))
}
