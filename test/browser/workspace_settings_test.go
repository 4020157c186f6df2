package browser_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/test/browsertest"
)

// TestWorkspaceSettingsInBrowser: the owner opens the settings from the
// menu, picks Almaty's time zone and Kazakhstan, and saves; the page says
// so, and the footer's clock is Almaty's. A refused limit marks its field
// (screenshots of both).
func TestWorkspaceSettingsInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(1200, 900), browsertest.Timeout(60*time.Second))
	e := apptest.Start(t, apptest.Options{})
	ws := e.App.DefaultWorkspace.ID
	apptest.AddUser(t, e, ws, "owner@example.com", "owner", "owner password 1")
	chatSignIn(t, ctx, e, "owner@example.com", "owner password 1")

	browsertest.Eval[bool](t, ctx, `document.querySelector('#nav-workspace').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#workspace-form')`)
	browsertest.Do(t, ctx,
		browsertest.Choose("#ws-timezone", "Asia/Almaty"),
		browsertest.Choose("#ws-region", "KZ"),
		chromedp.SetValue("#ws-limit", "-5"))
	// The browser's own check would stop -5; the server's is what is shown.
	browsertest.Eval[bool](t, ctx, `document.querySelector('#ws-limit').removeAttribute('min'), true`)
	browsertest.Eval[bool](t, ctx, `document.querySelector('#workspace-form button[type=submit]').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#problem')`)
	if !browsertest.Eval[bool](t, ctx, `document.querySelector('#ws-limit').classList.contains('bad') && document.querySelector('#ws-timezone').value == 'Asia/Almaty'`) {
		t.Fatal("the refused limit is not marked, or the chosen zone was lost")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "workspace-refused.png"), chromedp.SetValue("#ws-limit", "25"))
	browsertest.Eval[bool](t, ctx, `document.querySelector('#ws-trunk8').click(), true`)
	browsertest.Eval[bool](t, ctx, `document.querySelector('#workspace-form button[type=submit]').click(), true`)
	browsertest.WaitFor(t, ctx, `!!document.querySelector('#notice')`)
	// The browser asks for English.
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('#times-in').innerText`); got != "Times in Asia/Almaty" {
		t.Fatalf("footer after saving: %q", got)
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "workspace-saved.png"))
	w, err := e.App.Store.GetWorkspace(context.Background(), store.All, ws)
	if err != nil || w.Timezone != "Asia/Almaty" || w.PhoneRegion != "KZ" || w.PhoneTrunk8 || w.DialogsPerHourLimit != 25 {
		t.Fatalf("saved: %+v %v", w, err)
	}
}
