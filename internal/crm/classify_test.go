package crm

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
)

func TestClassify(t *testing.T) {
	reauth, slow, other := errors.New("invalid_grant"), errors.New("QUERY_LIMIT_EXCEEDED"), errors.New("bad request")
	sig := Signals{
		NeedsReauth: func(err error) bool { return errors.Is(err, reauth) },
		RetryAfter: func(err error) time.Duration {
			if errors.Is(err, slow) {
				return 2 * time.Second
			}
			return 0
		},
	}
	if Classify(nil, sig) != nil {
		t.Error("success classified as a failure")
	}
	if err := Classify(reauth, sig); !errors.Is(err, routing.ErrParked) {
		t.Errorf("re-authorisation not parked: %v", err)
	}
	if err := Classify(slow, sig); err == slow || !errors.Is(err, slow) {
		t.Errorf("rate limit not given its delay: %v", err)
	}
	if err := Classify(other, sig); err != other {
		t.Errorf("other error changed: %v", err)
	}
	if p := queue.Permanent(other); Classify(p, sig) != p {
		t.Error("a permanent error lost its verdict")
	}
}
