// Package browser holds browser tests of pages as people use them where
// they live: headless Chromium (Debian's chromium package) driven by
// chromedp, against a gateway and simulators started in the test.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// chromiumPath finds the browser. Without one the test skips on a
// developer's machine but fails in CI, which installs it (.ci/run), as
// internal/app's browser tests decide.
func chromiumPath(t *testing.T) string {
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

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.WindowSize(900, 1000),
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

// screenshot saves the whole page (the account's page with the iframe)
// under SCREENSHOT_DIR, else the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	t.Logf("screenshot %s", p)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// childFrame is the iframe of the top page, nil before it exists.
func childFrame(ctx context.Context) (*cdp.Frame, error) {
	return chromedp.Run(ctx, chromedp.Action[*cdp.Frame](func(ctx context.Context, tg *chromedp.Target) (*cdp.Frame, error) {
		r, err := cdp.Call(ctx, tg, page.GetFrameTree, cdp.Empty{})
		if err != nil || r.FrameTree == nil || len(r.FrameTree.ChildFrames) == 0 {
			return nil, err
		}
		return r.FrameTree.ChildFrames[0].Frame, nil
	}))
}

// inFrame evaluates expr in the iframe's document, in an isolated world
// of its own (the page's DOM, none of its script's variables): clicks
// and submits made there reach the page's own listeners as a person's do.
func inFrame[T any](ctx context.Context, expr string) (T, error) {
	var zero T
	f, err := childFrame(ctx)
	if err != nil || f == nil {
		return zero, fmt.Errorf("no iframe (%v)", err)
	}
	world, err := chromedp.Run(ctx, chromedp.Action[page.CreateIsolatedWorldResult](func(ctx context.Context, tg *chromedp.Target) (page.CreateIsolatedWorldResult, error) {
		return cdp.Call(ctx, tg, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{FrameID: f.ID, WorldName: "test"})
	}))
	if err != nil {
		return zero, err
	}
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, func(p *runtime.EvaluateParams) { p.ContextID = world.ExecutionContextID }))
}

// frameEval is inFrame that fails the test.
func frameEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := inFrame[T](ctx, expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFrame waits until cond is true in the iframe (asked from Go, again
// and again: a submit replaces the document under any waiting script).
func waitFrame(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := inFrame[bool](ctx, cond)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the iframe never had %s (last error %v)", cond, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// choose sets a field of the iframe's form as a person would: the value
// changes and the form hears input and change events.
func choose(t *testing.T, ctx context.Context, sel, value string) {
	t.Helper()
	frameEval[string](t, ctx, `(function(){var s=document.querySelector(`+strconv.Quote(sel)+`);s.value=`+strconv.Quote(value)+
		`;s.dispatchEvent(new Event('input',{bubbles:true}));s.dispatchEvent(new Event('change',{bubbles:true}));return s.value})()`)
}

func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	frameEval[bool](t, ctx, `(function(){document.querySelector(`+strconv.Quote(sel)+`).click();return true})()`)
}

// installAccount installs the widget of the simulator's example account
// as amoCRM does and waits for the queued exchange; it returns the
// integration's id.
func installAccount(t *testing.T, e *apptest.Env) string {
	t.Helper()
	if err := e.Amo.AddAccount(amosim.ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	q, err := e.Amo.InstallRedirect(amosim.ExampleAccount().ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client.Get(e.URL + "/amocrm/oauth/callback?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var id string
	e.Eventually("the account installed", func() bool {
		_, list := e.Do("GET", "/api/v1/integrations", nil)
		for _, v := range list["data"].([]any) {
			if m := v.(map[string]any); m["type"] == "amocrm" && m["state"] == "active" {
				id = m["id"].(string)
			}
		}
		return id != ""
	})
	e.WaitIdle()
	return id
}

// settingsTicket trades a disposable token of user for a settings
// ticket, as the widget's script does from the account's page.
func settingsTicket(t *testing.T, e *apptest.Env, user int) string {
	t.Helper()
	tok, _, err := e.Amo.DisposableToken(amosim.ExampleAccount().ID, user, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/amocrm/widget/ticket", strings.NewReader("purpose=settings"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.AmoURL)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ Ticket string }
	if err := json.Unmarshal(b, &out); err != nil || out.Ticket == "" {
		t.Fatalf("ticket: %d %s", resp.StatusCode, b)
	}
	return out.Ticket
}

// frameInto opens parent (a page of the account's own origin, as amoCRM's
// advanced_settings page is) and puts the settings iframe into it, as
// narrow as amoCRM's work area can be.
func frameInto(t *testing.T, ctx context.Context, parent, src string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(parent)); err != nil {
		t.Fatal(err)
	}
	js := `(function(){document.documentElement.innerHTML='<body style="margin:0;background:#eef"><div style="padding:8px;font:14px sans-serif">amoCRM · advanced_settings</div>` +
		`<iframe id="sb" style="width:440px;height:2600px;border:0"></iframe></body>';document.getElementById('sb').src=` + strconv.Quote(src) + `;return true})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil {
		t.Fatal(err)
	}
}

// binding reads the channel's binding from the admin API.
func binding(t *testing.T, e *apptest.Env, id, ch string) map[string]any {
	t.Helper()
	_, in := e.Do("GET", "/api/v1/integrations/"+id, nil)
	for _, b := range in["bindings"].([]any) {
		if m := b.(map[string]any); m["channel_id"] == ch {
			return m
		}
	}
	return nil
}

// An account admin opens the widget's settings page inside the account's
// page, switches a channel to round robin with weights, saves, reloads and
// finds it kept; leaving with a change asks first ("back" keeps the change,
// "discard" leaves without it, "save" keeps it); the language switches.
func TestAmoCRMSettingsInBrowser(t *testing.T) {
	ctx := browser(t)
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	id := installAccount(t, e)
	ch := e.CreateWhatsApp()
	if st, b := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm"}); st != 200 {
		t.Fatalf("bind: %d %v", st, b)
	}

	frameInto(t, ctx, e.AmoURL+"/", e.URL+"/amocrm/settings?"+url.Values{"ticket": {settingsTicket(t, e, 9000001)}, "lang": {"ru"}}.Encode())
	waitFrame(t, ctx, `!!document.querySelector('#settings-all') && document.documentElement.lang === 'ru'`)
	if !frameEval[bool](t, ctx, `document.body.innerText.includes('Анна Админова') && document.body.innerText.includes('Продажи → Первичный контакт')`) {
		t.Error("the page lacks the account's users or pipelines")
	}
	if frameEval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("the page is wider than the narrow iframe")
	}
	screenshot(t, ctx, "amocrm-settings-ru.png")
	// Access never configured: the matrix shows it open, not "none".
	if got := frameEval[string](t, ctx, `(function(s){return s.options[s.selectedIndex].text})(document.querySelector('select[name="lvl:9000002:`+ch+`"]'))`); got != "открыт (чтение и отправка)" {
		t.Errorf("an open matrix cell shows %q", got)
	}

	// A refused save: shown with the refusal, the address bar at the
	// page's own address, so a reload asks for the page, not the form.
	choose(t, ctx, "#notify", "5")
	click(t, ctx, "#save")
	waitFrame(t, ctx, `!!document.querySelector('#problem')`)
	screenshot(t, ctx, "amocrm-settings-refused.png")
	if p := frameEval[string](t, ctx, `location.pathname`); p != "/amocrm/settings" {
		t.Errorf("after a refused save the address is %s", p)
	}
	frameEval[bool](t, ctx, `(function(){location.reload();return true})()`)
	time.Sleep(300 * time.Millisecond)
	waitFrame(t, ctx, `!!document.querySelector('#settings-all') && !document.querySelector('#problem')`)
	if v := frameEval[string](t, ctx, `document.querySelector('#notify').value`); v != "300" {
		t.Errorf("after reloading a refused save the alert is %q", v)
	}

	// Round robin, Анна 3 and Иван 1, saved.
	choose(t, ctx, `select[name="strategy:`+ch+`"]`, "round_robin")
	click(t, ctx, `input[name="owner:`+ch+`:9000001"]`)
	choose(t, ctx, `input[name="weight:`+ch+`:9000001"]`, "3")
	click(t, ctx, `input[name="owner:`+ch+`:9000002"]`)
	click(t, ctx, "#save")
	waitFrame(t, ctx, `!!document.querySelector('#notice')`)
	screenshot(t, ctx, "amocrm-settings-saved.png")
	frameEval[bool](t, ctx, `(function(){location.reload();return true})()`)
	time.Sleep(300 * time.Millisecond)
	waitFrame(t, ctx, `!!document.querySelector('#settings-all') && !document.querySelector('#notice-gone')`)
	got := frameEval[string](t, ctx, `[document.querySelector('select[name="strategy:`+ch+`"]').value,
		document.querySelector('input[name="owner:`+ch+`:9000001"]').checked, document.querySelector('input[name="weight:`+ch+`:9000001"]').value,
		document.querySelector('input[name="owner:`+ch+`:9000002"]').checked, document.querySelector('input[name="weight:`+ch+`:9000002"]').value].join(' ')`)
	if got != "round_robin true 3 true 1" {
		t.Errorf("after reload: %s", got)
	}
	if b := binding(t, e, id, ch); b["owner"] == nil || b["owner"].(map[string]any)["strategy"] != "round_robin" {
		t.Errorf("the API's binding: %v", b)
	}

	// A change, then the language switch: the page asks first.
	choose(t, ctx, `input[name="name:`+ch+`"]`, "Продажи WA")
	click(t, ctx, "#lang-en")
	waitFrame(t, ctx, `document.querySelector('#leave-dialog').open`)
	screenshot(t, ctx, "amocrm-settings-leave.png")
	click(t, ctx, "#leave-back")
	waitFrame(t, ctx, `!document.querySelector('#leave-dialog').open`)
	if lang, name := frameEval[string](t, ctx, `document.documentElement.lang`), frameEval[string](t, ctx, `document.querySelector('input[name="name:`+ch+`"]').value`); lang != "ru" || name != "Продажи WA" {
		t.Errorf("back: the page is %s with the name %q", lang, name)
	}
	// Discard: English, without the change.
	click(t, ctx, "#lang-en")
	waitFrame(t, ctx, `document.querySelector('#leave-dialog').open`)
	click(t, ctx, "#leave-discard")
	waitFrame(t, ctx, `document.documentElement.lang === 'en' && !!document.querySelector('#settings-all')`)
	if name := frameEval[string](t, ctx, `document.querySelector('input[name="name:`+ch+`"]').value`); name != "" {
		t.Errorf("discarded name is %q", name)
	}
	if !frameEval[bool](t, ctx, `document.body.innerText.includes('Save settings') && document.body.innerText.includes('Refresh data from the CRM')`) {
		t.Error("the page is not in English")
	}
	screenshot(t, ctx, "amocrm-settings-en.png")
	// Save from the dialog: back in Russian, with the change.
	choose(t, ctx, `input[name="name:`+ch+`"]`, "WA Sales")
	click(t, ctx, "#lang-ru")
	waitFrame(t, ctx, `document.querySelector('#leave-dialog').open`)
	click(t, ctx, "#leave-save")
	waitFrame(t, ctx, `document.documentElement.lang === 'ru' && !!document.querySelector('#notice')`)
	if b := binding(t, e, id, ch); b["name"] != "WA Sales" {
		t.Errorf("saved from the dialog: %v", b)
	}

	// Delete asks for a confirmation; cancelling keeps everything.
	click(t, ctx, "#delete")
	waitFrame(t, ctx, `document.querySelector('#delete-dialog').open`)
	screenshot(t, ctx, "amocrm-settings-delete.png")
	click(t, ctx, "#delete-cancel")
	waitFrame(t, ctx, `!document.querySelector('#delete-dialog').open`)
	if b := binding(t, e, id, ch); b == nil {
		t.Error("cancelling the delete unbound the channel")
	}

	// A manager of the account reads the settings and changes nothing.
	frameInto(t, ctx, e.AmoURL+"/", e.URL+"/amocrm/settings?"+url.Values{"ticket": {settingsTicket(t, e, 9000002)}, "lang": {"en"}}.Encode())
	waitFrame(t, ctx, `!!document.querySelector('#readonly')`)
	if !frameEval[bool](t, ctx, `document.querySelector('fieldset.whole').disabled && !document.querySelector('#save')`) {
		t.Error("the manager's page can be changed")
	}
	screenshot(t, ctx, "amocrm-settings-manager-en.png")

	// Another site may not frame the page.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<!doctype html><title>x</title>") }))
	t.Cleanup(other.Close)
	frameInto(t, ctx, other.URL+"/", e.URL+"/amocrm/settings?"+url.Values{"ticket": {settingsTicket(t, e, 9000001)}}.Encode())
	time.Sleep(time.Second)
	if ok, err := inFrame[bool](ctx, `!!document.querySelector('#settings-all')`); err == nil && ok {
		t.Error("a page of another site framed the settings")
	}
}
