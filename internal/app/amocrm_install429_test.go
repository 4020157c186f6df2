package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// TestAmoCRMInstallUnder429: the widget install's queued exchange spends
// the single-use code, then the account answers 429 to every read, longer
// than the install job's own retries. The job is retried by the queue
// without exchanging the code again (amoCRM would refuse the spent code
// and the install would be lost), and the account is recorded once the
// limit lifts.
func TestAmoCRMInstallUnder429(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		e.Amo.SetRate(0.001, 1) // one call now, then 429 for a long while
		q, err := e.Amo.InstallRedirect(amoAccount)
		if err != nil {
			t.Fatal(err)
		}
		if st, page, _ := amoGet(t, e, "/amocrm/oauth/callback", q); st != http.StatusOK || !strings.Contains(page, "подключается") {
			t.Fatalf("install callback: %d %s", st, page)
		}
		// The job's own attempts (three reads) fail, then the queue's
		// retry of the job fails too.
		e.EventuallyWithin(2*time.Minute, "an attempt of the install failed on the reads", func() bool {
			var failed int64
			err := e.App.DB.Gorm.Table("jobs").Where("kind = ? AND last_error <> ''", "amocrm.install").Count(&failed).Error
			return err == nil && failed == 1 && e.Amo.Counts(amoAccount).TooMany > 0
		})
		if n := len(amoIntegrations(t, e)); n != 0 {
			t.Fatalf("%d integrations recorded while the account was unreadable", n)
		}
		e.Amo.SetRate(-1, 0)
		e.EventuallyWithin(2*time.Minute, "the account recorded", func() bool {
			for _, in := range amoIntegrations(t, e) {
				if in["state"] == "active" {
					return true
				}
			}
			return false
		})
		e.WaitIdle()
		tr := e.Amo.TokenRequests()
		if tr["authorization_code"] != 1 {
			t.Fatalf("token endpoint calls %v: the code was exchanged %d times", tr, tr["authorization_code"])
		}
		for k, v := range tr {
			if strings.HasPrefix(k, "refused") {
				t.Fatalf("the spent code was offered again: %s ×%d", k, v)
			}
		}
		if len(amoIntegrations(t, e)) != 1 {
			t.Fatalf("integrations %v", amoIntegrations(t, e))
		}
		// The stash is gone with the install.
		var left int64
		if err := e.App.DB.Gorm.Table("oauth_states").Where("provider = ?", "amocrm.install").Count(&left).Error; err != nil || left != 0 {
			t.Fatalf("%d stashed tokens left (%v)", left, err)
		}
	})
}
