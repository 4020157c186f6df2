// Package browsertest is the one harness of the browser tests: headless
// Chromium (Debian's chromium package) driven by chromedp. It finds the
// browser (skipping outside CI, failing in CI), starts it with every host
// but the loopback failing at once, and gives the small actions the tests
// share: screenshots, scripts on the page or in its iframe, waits and
// form choices.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumPath finds the browser. Without one the browser tests skip on a
// developer's machine but fail in CI (CI set to anything but "", "false"
// or "0"), which installs it (.ci/run).
func ChromiumPath(t testing.TB) string {
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

// config is what Options change.
type config struct {
	width, height int
	limit         time.Duration
}

// Option changes the browser New starts.
type Option func(*config)

// Size sets the window's size (1200×800 unless set).
func Size(width, height int) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// Timeout bounds the whole browser session (30 s unless set): a test
// that hangs fails instead of holding the run.
func Timeout(d time.Duration) Option {
	return func(c *config) { c.limit = d }
}

// New starts a headless Chromium for one test and returns its context;
// the browser ends with the test. Every host but the loopback fails at
// once (pages load outside scripts, such as Bitrix24's, which a test must
// not wait for).
func New(t testing.TB, opts ...Option) context.Context {
	t.Helper()
	c := config{width: 1200, height: 800, limit: 30 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	allocOpts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.WindowSize(c.width, c.height),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	browser, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(browser, c.limit)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	// Registered second, so it runs first, while the browser lives; on the
	// browser's context, not the bounded one a slow test may have spent.
	t.Cleanup(func() {
		if t.Failed() {
			shotOnFailure(t, browser)
		}
	})
	return ctx
}

// FailureDirEnv names the directory for the pages of failed tests; unset,
// they go to test/browser/output of the module (gitignored).
const FailureDirEnv = "SCREENSHOT_DIR"

// failureDir is where shotOnFailure writes: FailureDirEnv, else
// test/browser/output under the module's root (found from the working
// directory up, so every test package writes to the same place).
func failureDir() (string, error) {
	if d := os.Getenv(FailureDirEnv); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "test", "browser", "output"), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}

// shotOnFailure saves the page a failed test left, as
// <dir>/<TestName>-<n>.png (the first n free, so reruns and several
// browsers of one test keep theirs), and names the file in the test's
// log. It reports its own trouble in the log only: the test has failed
// already, for its own reason.
func shotOnFailure(t testing.TB, browser context.Context) {
	dir, err := failureDir()
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Logf("no screenshot of the failed test's page: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(browser, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot of the failed test's page: %v", err)
		return
	}
	name := strings.NewReplacer("/", "_", `\`, "_", ":", "_", " ", "_").Replace(t.Name())
	for n := 1; n < 1000; n++ {
		p := filepath.Join(dir, name+"-"+strconv.Itoa(n)+".png")
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			_, err = f.Write(png)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			t.Logf("no screenshot of the failed test's page: %v", err)
			return
		}
		t.Logf("screenshot of the failed test's page: %s", p)
		return
	}
	t.Logf("no screenshot of the failed test's page: %s holds 999 of %s already", dir, name)
}

// Do runs browser steps, failing the test on an error.
func Do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// DirFrom is the directory named by the environment variable env,
// created if need be, else the test's temporary directory.
func DirFrom(t testing.TB, env string) string {
	t.Helper()
	if d := os.Getenv(env); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// ScreenshotDir keeps the screenshots: SCREENSHOT_DIR when set (to look
// at them), else the test's temporary directory.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	return DirFrom(t, "SCREENSHOT_DIR")
}

// Capture saves what capture takes as dir/name.
func Capture(t testing.TB, dir, name string, capture chromedp.Action[[]byte]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := capture(ctx, tg)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		t.Logf("screenshot %s", p)
		return os.WriteFile(p, png, 0o644)
	})
}

// Shot saves the whole page as a PNG in ScreenshotDir (look at it: a page
// that renders wrong is a failing page).
func Shot(t testing.TB, name string) chromedp.Action[chromedp.Void] {
	t.Helper()
	return Capture(t, ScreenshotDir(t), name, chromedp.FullScreenshot(100))
}

// ElementShot saves one element of the page as a PNG at its own size (a
// phone's full page is too tall to read).
func ElementShot(t testing.TB, sel, name string) chromedp.Action[chromedp.Void] {
	t.Helper()
	return Capture(t, ScreenshotDir(t), name, chromedp.Screenshot(sel))
}

// Eval runs a script on the page and returns its value.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// WaitFor waits (up to 10 s) until cond is true on the page. It asks from
// Go, again and again, because a form's submit replaces the document
// under any query that waits inside the page.
func WaitFor(t testing.TB, ctx context.Context, cond string) {
	t.Helper()
	WaitWithin(t, ctx, 10*time.Second, cond)
}

// WaitWithin is WaitFor with its own patience (live updates under load);
// it returns how long the condition took.
func WaitWithin(t testing.TB, ctx context.Context, within time.Duration, cond string) time.Duration {
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
		time.Sleep(50 * time.Millisecond)
	}
}

// Choose picks a select's option as a person would: the value changes and
// the page hears a change event.
func Choose(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](`(function(){var s=document.querySelector(`+strconv.Quote(sel)+`);s.value=`+strconv.Quote(value)+
			`;s.dispatchEvent(new Event('change',{bubbles:true}));return s.value})()`)(ctx, tg)
		return err
	})
}

// Shown reports whether the element takes space on the page.
func Shown(t testing.TB, ctx context.Context, sel string) bool {
	t.Helper()
	return Eval[bool](t, ctx, `(function(){var e=document.querySelector(`+strconv.Quote(sel)+`);return !!e && e.getClientRects().length>0})()`)
}

// ChildFrame is the iframe of the top page, nil before it exists.
func ChildFrame(ctx context.Context) (*cdp.Frame, error) {
	return chromedp.Run(ctx, chromedp.Action[*cdp.Frame](func(ctx context.Context, tg *chromedp.Target) (*cdp.Frame, error) {
		r, err := cdp.Call(ctx, tg, page.GetFrameTree, cdp.Empty{})
		if err != nil || r.FrameTree == nil || len(r.FrameTree.ChildFrames) == 0 {
			return nil, err
		}
		return r.FrameTree.ChildFrames[0].Frame, nil
	}))
}

// InFrame evaluates expr in the iframe's document, in an isolated world
// of its own (the page's DOM, none of its script's variables): clicks
// and submits made there reach the page's own listeners as a person's do.
func InFrame[T any](ctx context.Context, expr string) (T, error) {
	var zero T
	f, err := ChildFrame(ctx)
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

// FrameEval is InFrame that fails the test.
func FrameEval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := InFrame[T](ctx, expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// WaitFrame waits (up to 15 s) until cond is true in the iframe, asked
// from Go again and again: a submit replaces the document under any
// waiting script.
func WaitFrame(t testing.TB, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := InFrame[bool](ctx, cond)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			top, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("the iframe never had %s (last error %v); the page: %s", cond, err, top)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FrameChoose sets a field of the iframe's form as a person would: the
// value changes and the form hears input and change events.
func FrameChoose(t testing.TB, ctx context.Context, sel, value string) {
	t.Helper()
	FrameEval[string](t, ctx, `(function(){var s=document.querySelector(`+strconv.Quote(sel)+`);s.value=`+strconv.Quote(value)+
		`;s.dispatchEvent(new Event('input',{bubbles:true}));s.dispatchEvent(new Event('change',{bubbles:true}));return s.value})()`)
}

// FrameClick clicks an element of the iframe's document.
func FrameClick(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	FrameEval[bool](t, ctx, `(function(){document.querySelector(`+strconv.Quote(sel)+`).click();return true})()`)
}

// Text is the text of the page's first element that matches sel, as the
// person sees it.
func Text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	return Eval[string](t, ctx, `document.querySelector(`+strconv.Quote(sel)+`).innerText`)
}

// AcceptLanguage makes the browser ask for the languages of value, as a
// person's browser set to them does (headless Chromium asks for en-US
// otherwise).
func AcceptLanguage(value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": value}})
		return err
	})
}

// Phone turns a phone's screen (390×844, mobile) on or back off.
func Phone(on bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if !on {
			_, err := cdp.Call(ctx, tg, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
			return err
		}
		_, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true})
		return err
	})
}
