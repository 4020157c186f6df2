package browser_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/test/browsertest"

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

// demoShot saves the 1200×800 viewport as a PNG in DEMO_SCREENSHOTS (the
// README's are made with DEMO_SCREENSHOTS=$PWD/docs/screenshots), else in the
// test's temporary directory.
func demoShot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	t.Helper()
	return browsertest.Capture(t, browsertest.DirFrom(t, "DEMO_SCREENSHOTS"), name, chromedp.CaptureScreenshot())
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
