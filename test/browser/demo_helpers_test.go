package browser_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/demo"
)

// The demo's browser test drives the pages a person opens after
// `switchboard demo`; its screenshots are the README's. The helpers carry
// a demo prefix: other browser tests share this package.

// demoStart runs the demo in this process on free loopback ports.
func demoStart(t *testing.T) *demo.Demo {
	t.Helper()
	d, err := demo.Start(t.Context(), demo.Options{DataDir: t.TempDir(), StatusDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("close the demo: %v", err)
		}
	})
	return d
}

// demoBrowser starts a headless Chromium with a 1200×800 window. Every
// host but the loopback fails at once.
func demoBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(cardChromium(t)),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1200, 800),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// demoShot saves the 1200×800 viewport as a PNG in DEMO_SCREENSHOTS (the
// README's are made with DEMO_SCREENSHOTS=docs/screenshots), else in the
// test's temporary directory.
func demoShot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	dir := os.Getenv("DEMO_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.CaptureScreenshot()(ctx, tg)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		t.Logf("screenshot %s", p)
		return os.WriteFile(p, png, 0o644)
	})
}

// demoEventually polls cond from Go; the bound guards against hangs.
func demoEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
