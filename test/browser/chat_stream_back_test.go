package browser_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/test/browsertest"
)

// TestCabinetChatStreamComesBack: the chat's event stream is refused once
// (a proxy's 503 while the gateway restarts), which closes a browser's
// EventSource for good; the page opens it again, so an answer given
// elsewhere afterwards still appears, with its status, without a reload.
func TestCabinetChatStreamComesBack(t *testing.T) {
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

	// The first stream request gets a 503; the rest go through.
	var asked atomic.Int32
	browsertest.Do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/chat/events*"}}}); err != nil {
			return err
		}
		// The browser's context, not this action's: the listener lives
		// as long as the page.
		bctx := ctx
		go func() {
			for ev, err := range cdp.Events(bctx, tg, fetch.RequestPaused) {
				if err != nil {
					return
				}
				if asked.Add(1) == 1 {
					_, err = cdp.Call(bctx, tg, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 503, Body: []byte("restarting")})
				} else {
					_, err = cdp.Call(bctx, tg, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				}
				if err != nil {
					return
				}
			}
		}()
		return nil
	}))
	anna, err := e.App.Store.GetContact(context.Background(), ch, "79161234567")
	if err != nil {
		t.Fatal(err)
	}
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/chat?d="+anna.ID))
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#chat-form textarea[name=text]')`)
	chatMark(t, ctx)
	// The refused stream is opened again.
	for end := time.Now().Add(20 * time.Second); asked.Load() < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the refused stream was not asked for again (%d requests)", asked.Load())
		}
	}
	browsertest.WaitWithin(t, ctx, 20*time.Second, `document.querySelector('#chat-live').hidden`)
	if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": "79161234567", "text": "Answer through the API"}); st >= 300 {
		t.Fatalf("send: %d %v", st, body)
	}
	took := browsertest.WaitWithin(t, ctx, 20*time.Second, `[...document.querySelectorAll('#chat-log .msg.out[data-status=read]')].some(m => m.innerText.includes('Answer through the API'))`)
	t.Logf("API answer to read tick on the page: %s", took)
	chatKept(t, ctx)
}
