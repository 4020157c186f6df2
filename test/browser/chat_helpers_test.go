package browser_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// Helpers of the shared chat's browser tests (chat prefix); the generic
// ones (cardEval, cardWait, cardShown, cardChoose, cardShot) are shared
// from card_helpers_test.go.

// chatBrowser starts a headless Chromium of the given size that may run
// for long, for the load test.
func chatBrowser(t *testing.T, w, h int, limit time.Duration) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(cardChromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(w, h),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, limit)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// chatDo runs browser steps, failing the test on an error.
func chatDo(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// chatUser adds a cabinet user of the workspace with the admin token.
func chatUser(t *testing.T, e *apptest.Env, ws, email, role, pw string) string {
	t.Helper()
	return cardDo(t, e, http.StatusCreated, "POST", "/api/v1/workspaces/"+ws+"/users", map[string]any{"email": email, "role": role, "password": pw})["id"].(string)
}

// chatSignIn signs in through the cabinet's form.
func chatSignIn(t *testing.T, ctx context.Context, e *apptest.Env, email, pw string) {
	t.Helper()
	chatDo(t, ctx, chromedp.Navigate(e.URL+"/login"),
		chromedp.WaitVisible("#email"),
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", pw))
	cardEval[bool](t, ctx, `document.querySelector('#sign-in').click(), true`)
	// The form's answer replaces the document: asked again and again.
	cardWait(t, ctx, `!!document.querySelector('#nav-chat')`)
}

// chatMark puts a marker on the page's window: it is gone if the page
// ever reloads.
func chatMark(t *testing.T, ctx context.Context) {
	t.Helper()
	cardEval[bool](t, ctx, `window.__chatMarker = 'kept'; true`)
}

// chatKept fails the test if the page reloaded since chatMark.
func chatKept(t *testing.T, ctx context.Context) {
	t.Helper()
	if got := cardEval[string](t, ctx, `String(window.__chatMarker)`); got != "kept" {
		t.Fatalf("the page reloaded (marker %q)", got)
	}
}

// chatWaitFor is cardWait with a longer patience, for live updates under
// load.
func chatWaitFor(t *testing.T, ctx context.Context, within time.Duration, cond string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("the page never had %s within %s (last error %v)", cond, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// chatQ quotes a string for a script.
func chatQ(s string) string { return strconv.Quote(s) }
