package browsertest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// recordingTB is a test that can fail without failing the run: it keeps
// its failure, its log and its cleanups, and hands the rest (Name,
// Helper, Skip, TempDir) to the real test.
type recordingTB struct {
	testing.TB
	failed   bool
	logs     []string
	cleanups []func()
}

func (r *recordingTB) Failed() bool { return r.failed }
func (r *recordingTB) Errorf(format string, args ...any) {
	r.failed = true
	r.Logf(format, args...)
}
func (r *recordingTB) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// end runs the cleanups as the testing package does: last first.
func (r *recordingTB) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// A failed test leaves a screenshot of its page named after it, and says
// where in its log; a passing one leaves none.
func TestScreenshotOnFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!DOCTYPE html><title>x</title><h1 style="color:#b00">Страница упавшего теста</h1>`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	t.Setenv(FailureDirEnv, dir)

	run := func(fail bool) *recordingTB {
		r := &recordingTB{TB: t}
		ctx := New(r)
		Do(r, ctx, chromedp.Navigate(srv.URL))
		if fail {
			r.Errorf("failed on purpose")
		}
		r.end()
		return r
	}

	if r := run(false); len(r.logs) != 0 {
		t.Fatalf("a passing test logged %q", r.logs)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a passing test left %v", left)
	}
	for n := 1; n <= 2; n++ {
		r := run(true)
		want := filepath.Join(dir, fmt.Sprintf("TestScreenshotOnFailure-%d.png", n))
		if !strings.Contains(strings.Join(r.logs, "\n"), "screenshot of the failed test's page: "+want) {
			t.Fatalf("failure %d: the log does not name %s: %q", n, want, r.logs)
		}
		b, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, pngMagic) || len(b) < 1000 {
			t.Fatalf("%s is no PNG of a page (%d bytes)", want, len(b))
		}
	}
}

// Without SCREENSHOT_DIR the pages go to the module's test/browser/output,
// whichever package's directory the test runs in.
func TestFailureDirDefault(t *testing.T) {
	t.Setenv(FailureDirEnv, "")
	d, err := failureDir()
	if err != nil {
		t.Fatal(err)
	}
	here, _ := os.Getwd()
	if want := filepath.Join(filepath.Dir(filepath.Dir(here)), "test", "browser", "output"); d != want {
		t.Fatalf("failureDir = %s, want %s", d, want)
	}
}
