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
)

// TestQuickReplyInBrowser: the owner adds a quick reply with a file on
// the Templates page, opens the shared chat, picks it (its text fills the
// box and the page says which file goes with it) and sends it: the
// customer gets the text and the stored file.
func TestQuickReplyInBrowser(t *testing.T) {
	ctx := chatBrowser(t, 1200, 900, 90*time.Second)
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	_, ws, ch := cardInstall(t, e)
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79161234567", "Анна Смирнова", "Пришлите прайс, пожалуйста"); err != nil {
		t.Fatal(err)
	}
	anna := chatDialogOf(t, e, ch, "79161234567")
	e.WaitIdle()
	chatUser(t, e, ws, "owner@example.com", "owner", "owner password 1")
	pdf := filepath.Join(t.TempDir(), "price-2026.pdf")
	body := []byte("%PDF-1.4\n1 0 obj <<>> endobj\nprice list\n%%EOF\n")
	if err := os.WriteFile(pdf, body, 0o644); err != nil {
		t.Fatal(err)
	}

	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")
	cardEval[bool](t, ctx, `document.querySelector('#nav-templates').click(), true`)
	cardWait(t, ctx, `!!document.querySelector('#quick-add')`)
	chatDo(t, ctx,
		chromedp.SendKeys(`#quick-add input[name=title]`, "Прайс"),
		chromedp.SendKeys(`#quick-add textarea[name=text]`, "Здравствуйте! Прайс-лист во вложении."),
		chromedp.SetUploadFiles(`#quick-add input[type=file]`, []string{pdf}))
	cardEval[bool](t, ctx, `document.querySelector('#quick-add button[type=submit]').click(), true`)
	cardWait(t, ctx, `!!document.querySelector('#notice') && document.querySelector('#quick-list').innerText.indexOf('price-2026.pdf') >= 0`)
	chatDo(t, ctx, cardShot(t, "quick-replies.png"))

	chatDo(t, ctx, chromedp.Navigate(e.URL+"/chat?d="+anna))
	cardWait(t, ctx, `!!document.querySelector('#chat-quick')`)
	chatMark(t, ctx)
	id := cardEval[string](t, ctx, `document.querySelector('#chat-quick option[data-file="price-2026.pdf"]').value`)
	chatDo(t, ctx, cardChoose("#chat-quick", id))
	if got := cardEval[string](t, ctx, `document.querySelector('#chat-form textarea[name=text]').value`); got != "Здравствуйте! Прайс-лист во вложении." {
		t.Fatalf("the quick reply did not fill the text: %q", got)
	}
	if !cardShown(t, ctx, "#chat-quick-file") || !strings.Contains(cardEval[string](t, ctx, `document.querySelector('#chat-quick-file').innerText`), "price-2026.pdf") {
		t.Fatal("the page does not say which file goes with the reply")
	}
	chatDo(t, ctx, cardShot(t, "quick-reply-picked.png"), chromedp.Click("#chat-form button[type=submit]"))
	chatWaitFor(t, ctx, 20*time.Second, `document.querySelectorAll('#chat-log .msg.out').length == 1`)
	chatKept(t, ctx)
	chatDo(t, ctx, cardShot(t, "quick-reply-sent.png"))
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
	if cardShown(t, ctx, "#chat-quick-file") || cardEval[string](t, ctx, `document.querySelector('#chat-quick').value`) != "" {
		t.Fatal("the picked quick reply stays after the send")
	}
}

// TestPeopleAndChannelsPagesInBrowser: the employees page's edit form,
// one's own account page and the channels page's last webhook render
// (screenshots), and an owner resets a manager's password in the page.
func TestPeopleAndChannelsPagesInBrowser(t *testing.T) {
	ctx := chatBrowser(t, 1200, 900, 60*time.Second)
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	_, ws, _ := cardInstall(t, e)
	if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, "79161234567", "Анна", "Добрый день"); err != nil {
		t.Fatal(err)
	}
	e.WaitIdle()
	chatUser(t, e, ws, "owner@example.com", "owner", "owner password 1")
	mgr := chatUser(t, e, ws, "manager@example.com", "manager", "manager password")
	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")

	chatDo(t, ctx, chromedp.Navigate(e.URL+"/channels"))
	cardWait(t, ctx, `!!document.querySelector('.last-webhook')`)
	if got := cardEval[string](t, ctx, `document.querySelector('.last-webhook').innerText`); got == "—" || got == "" {
		t.Fatalf("the channel's last webhook: %q", got)
	}
	chatDo(t, ctx, cardShot(t, "channels-last-webhook.png"))

	chatDo(t, ctx, chromedp.Navigate(e.URL+"/employees"))
	cardWait(t, ctx, `!!document.querySelector('#edit-`+mgr+`')`)
	cardEval[bool](t, ctx, `document.querySelector('#edit-`+mgr+`').open = true, true`)
	chatDo(t, ctx, cardShot(t, "employees-edit.png"))
	cardEval[bool](t, ctx, `document.querySelector('#edit-`+mgr+` .reset-form button').click(), true`)
	cardWait(t, ctx, `!!document.querySelector('#generated')`)
	if got := cardEval[string](t, ctx, `document.querySelector('#generated').innerText`); len(got) != 16 {
		t.Fatalf("the generated password: %q", got)
	}
	chatDo(t, ctx, cardShot(t, "employees-reset.png"))

	cardEval[bool](t, ctx, `document.querySelector('#nav-account').click(), true`)
	cardWait(t, ctx, `!!document.querySelector('#own-password')`)
	chatDo(t, ctx, cardShot(t, "account.png"))
}
