package browser_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/test/browsertest"
)

// Helpers of the shared chat's browser tests (chat prefix); the generic
// ones are test/browsertest's.

// chatSignIn signs in through the cabinet's form.
func chatSignIn(t *testing.T, ctx context.Context, e *apptest.Env, email, pw string) {
	t.Helper()
	browsertest.Do(t, ctx, chromedp.Navigate(e.URL+"/login"),
		chromedp.WaitVisible("#email"),
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", pw))
	browsertest.Eval[bool](t, ctx, `document.querySelector('#sign-in').click(), true`)
	// The form's answer replaces the document: asked again and again.
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#nav-chat')`)
}

// chatMark puts a marker on the page's window: it is gone if the page
// ever reloads.
func chatMark(t *testing.T, ctx context.Context) {
	t.Helper()
	browsertest.Eval[bool](t, ctx, `window.__chatMarker = 'kept'; true`)
}

// chatKept fails the test if the page reloaded since chatMark.
func chatKept(t *testing.T, ctx context.Context) {
	t.Helper()
	if got := browsertest.Eval[string](t, ctx, `String(window.__chatMarker)`); got != "kept" {
		t.Fatalf("the page reloaded (marker %q)", got)
	}
}

// chatQ quotes a string for a script.
func chatQ(s string) string { return strconv.Quote(s) }
