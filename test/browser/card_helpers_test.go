package browser_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// The card window is tested in a real browser: headless Chromium
// (Debian's chromium package) driven by chromedp. The helpers here carry
// a card prefix: other browser tests share this package.

// cardChromium finds the browser. Without one the tests skip on a
// developer's machine but fail in CI, which installs it.
func cardChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal("chromium is not installed, and CI must run the browser tests (apt-get install chromium)")
	}
	t.Skip("chromium is not installed; the browser tests skip outside CI")
	return ""
}

// cardBrowser starts a headless Chromium the size of amoCRM's card
// column. Every host but the loopback fails at once.
func cardBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(cardChromium(t)),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.WindowSize(360, 520),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// cardShot saves the page as a PNG in SCREENSHOT_DIR (else the test's
// temporary directory). Look at them: a page that renders wrong is a
// failing page.
func cardShot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		t.Logf("screenshot %s", p)
		return os.WriteFile(p, png, 0o644)
	})
}

// cardEval runs a script on the page and returns its value.
func cardEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// cardWait waits until cond is true on the page, asking from Go again and
// again: a form's submit replaces the document under a query waiting in
// it.
func cardWait(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never had %s (last error %v)", cond, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cardChoose picks a select's option as a person would: the value changes
// and the page hears a change event.
func cardChoose(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](`(function(){var s=document.querySelector(`+strconv.Quote(sel)+`);s.value=`+strconv.Quote(value)+
			`;s.dispatchEvent(new Event('change',{bubbles:true}));return s.value})()`)(ctx, tg)
		return err
	})
}

// cardShown reports whether the element takes space on the page.
func cardShown(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	return cardEval[bool](t, ctx, `(function(){var e=document.querySelector(`+strconv.Quote(sel)+`);return !!e && e.getClientRects().length>0})()`)
}

// The amoCRM account of the card tests: the simulator's example account.
const (
	cardAccount = 30123456
	cardAdmin   = 9000001
	cardManager = 9000002
)

// cardDo calls the gateway's admin API and fails the test on another
// status than want.
func cardDo(t *testing.T, e *apptest.Env, want int, method, path string, body any) map[string]any {
	t.Helper()
	st, v := e.Do(method, path, body)
	if st != want {
		t.Fatalf("%s %s: %d %v", method, path, st, v)
	}
	return v
}

// cardInstall adds the example account, installs the widget as amoCRM
// does, binds a WhatsApp channel in CRM mode and syncs its templates and
// the account's users. It returns the integration, workspace and channel.
func cardInstall(t *testing.T, e *apptest.Env) (string, string, string) {
	t.Helper()
	if err := e.Amo.AddAccount(amosim.ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	q, err := e.Amo.InstallRedirect(cardAccount)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.URL + "/amocrm/oauth/callback?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var integ, ws string
	e.Eventually("account recorded", func() bool {
		_, list := e.Do("GET", "/api/v1/integrations", nil)
		items, _ := list["data"].([]any)
		for _, v := range items {
			if m := v.(map[string]any); m["type"] == "amocrm" && m["state"] == "active" {
				integ, ws = m["id"].(string), m["workspace_id"].(string)
			}
		}
		return integ != ""
	})
	e.WaitIdle()
	ch := cardDo(t, e, http.StatusCreated, "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Продажи", "workspace_id": ws,
		"phone_number_id": apptest.PhoneNumberID, "waba_id": apptest.WabaID, "display_phone": "+7 701 234 56 78", "access_token": apptest.WAToken})["id"].(string)
	cardDo(t, e, http.StatusOK, "PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm"})
	cardDo(t, e, http.StatusOK, "POST", "/api/v1/channels/"+ch+"/templates/refresh", nil)
	cardDo(t, e, http.StatusOK, "POST", "/api/v1/integrations/"+integ+"/refresh", nil)
	return integ, ws, ch
}

// cardURL buys a ticket with the widget's disposable token of user, as the
// widget's script does, and returns the card window's address for the
// lead.
func cardURL(t *testing.T, e *apptest.Env, user, lead int, lang string) string {
	t.Helper()
	tok, _, err := e.Amo.DisposableToken(cardAccount, user, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/amocrm/widget/ticket", strings.NewReader(url.Values{"purpose": {"card"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.AmoURL)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var got struct {
		Ticket string `json:"ticket"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Ticket == "" {
		t.Fatalf("ticket: %d %s", resp.StatusCode, b)
	}
	return e.URL + "/amocrm/card?" + url.Values{"ticket": {got.Ticket}, "entity": {"leads"}, "id": {strconv.Itoa(lead)}, "lang": {lang}}.Encode()
}
