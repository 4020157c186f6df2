package crm

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
)

// Signals are what a CRM's client can tell about a failed call; the CRM
// knows its error codes, Classify knows what the queue does with them.
type Signals struct {
	// NeedsReauth: nothing but the integration's admin authorising again
	// helps (refresh token dead, app removed or unpaid).
	NeedsReauth func(err error) bool
	// RetryAfter: how long the CRM asked us to wait (rate limits, its own
	// outages); 0 when err is not such an answer.
	RetryAfter func(err error) time.Duration
	// Outage (optional): the CRM answered, but with the error of a server
	// that is down or cut off behind its proxy (502, 503, 504) rather than
	// a refusal of this request. Rate limits that share those statuses
	// (Bitrix24's QUERY_LIMIT_EXCEEDED is a 503) are not outages: the
	// limiter and RetryAfter handle them.
	Outage func(err error) bool
}

// Classify turns a failed CRM call into what the queue does with its job:
// parked (routing.ErrParked, whose jobs routing retries only after a long
// pause) when only the admin can help; retried after
// the CRM's own delay when it asked to slow down; marked
// routing.ErrUnavailable when the CRM did not answer at all or answered
// as a server that is down (Signals.Outage); anything else as it is, for
// the queue's backoff (a queue.Permanent stays permanent). A plain 500 is
// not an outage: it may be a bug that one request triggers every time,
// and such a job must still dead-letter after its attempts.
func Classify(err error, sig Signals) error {
	switch {
	case err == nil:
		return nil
	case sig.NeedsReauth(err):
		return fmt.Errorf("%w: %v", routing.ErrParked, err)
	case sig.Outage != nil && sig.Outage(err):
		// An outage that answers errors waits like one that refuses
		// connections: attempts unspent, tried again within half a
		// minute (routing's waitForCRM).
		return fmt.Errorf("%w: %w", routing.ErrUnavailable, err)
	}
	if d := sig.RetryAfter(err); d > 0 {
		return queue.RetryAfter(d, err)
	}
	// No answer at all (refused, reset, timed out, name not found): the
	// CRM is down or cut off, not refusing this work.
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("%w: %w", routing.ErrUnavailable, err)
	}
	return err
}
