package crm_test

import (
	"errors"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/routing"
)

// A call that got no answer (refused, timed out) is marked unavailable; an
// answer refusing the work, a rate limit and a need to re-authorise are not.
func TestClassifyMarksNoAnswerUnavailable(t *testing.T) {
	sig := crm.Signals{
		NeedsReauth: func(err error) bool { return err.Error() == "reauth" },
		RetryAfter: func(err error) time.Duration {
			if err.Error() == "slow down" {
				return time.Second
			}
			return 0
		},
	}
	refused := &url.Error{Op: "Post", URL: "https://portal.example/rest/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, c := range []struct {
		err  error
		down bool
	}{
		{refused, true},
		{errors.New("ERROR_ARGUMENT: bad message"), false},
		{errors.New("slow down"), false},
		{errors.New("reauth"), false},
	} {
		got := crm.Classify(c.err, sig)
		if errors.Is(got, routing.ErrUnavailable) != c.down {
			t.Errorf("Classify(%v) = %v; unavailable want %v", c.err, got, c.down)
		}
		if !errors.Is(got, c.err) && !errors.Is(got, routing.ErrParked) {
			t.Errorf("Classify(%v) lost the cause: %v", c.err, got)
		}
	}
}
