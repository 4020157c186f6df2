package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The page's buttons, pressed in headless Chromium, post the iframe form
// to the app as a portal user's browser would. Skips without chromium
// outside CI, as the gateway's browser tests do.
func TestOpenButtonsInBrowser(t *testing.T) {
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatal("chromium is not installed, and CI must run the browser tests")
		}
		t.Skip("chromium is not installed; the browser tests skip outside CI")
	}
	// The app stub shows what it was posted.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := fmt.Fprintf(w, "<p id=got>%s %s %s auth=%t lang=%s</p>", r.Method, r.URL.Path, r.PostForm.Get("PLACEMENT"),
			r.PostForm.Get("AUTH_ID") != "", r.URL.Query().Get("LANG")); err != nil {
			t.Log(err)
		}
	}))
	defer app.Close()
	cfg, err := parseFlags([]string{"-install-url", app.URL + "/bitrix24/install"})
	if err != nil {
		t.Fatal(err)
	}
	sim := newSim(cfg, slog.New(slog.DiscardHandler))
	defer sim.Close()
	srv := httptest.NewServer(newHandler(sim, cfg, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	// The card tab's handler is the one the app binds at install.
	access, _ := sim.InstallTokens(cfg.memberID)
	resp, err := http.Post(srv.URL+"/rest/placement.bind.json?auth="+access+"&PLACEMENT=CRM_DEAL_DETAIL_TAB&HANDLER="+app.URL+"/bitrix24/tab", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU)...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	press := func(form, lang string) string {
		t.Helper()
		err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/sim/"), chromedp.WaitVisible("#"+form),
			// The buttons open a new tab; here the same tab, to read it.
			chromedp.SetAttributeValue("#"+form, "target", "_self"),
			chromedp.SetValue("#"+form+" select[name=lang]", lang),
			chromedp.Click("#"+form+" button"))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById('got')||{}).textContent||''`))
			if err == nil && got != "" {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the app was never opened (%v)", form, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := press("open-app", "en"); got != "POST /bitrix24/app DEFAULT auth=true lang=en" {
		t.Errorf("open the app page: %s", got)
	}
	if got := press("open-tab", "ru"); !strings.HasPrefix(got, "POST /bitrix24/tab CRM_DEAL_DETAIL_TAB auth=true lang=ru") {
		t.Errorf("open the card tab: %s", got)
	}
}
