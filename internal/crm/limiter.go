package crm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LimiterOptions shape a Limiter. Now and Sleep are for tests, which drive
// the limiter without waiting in real time; nil takes the real clock.
type LimiterOptions struct {
	// Rate is requests per second per integration; Burst how many may go
	// at once. Both must be positive.
	Rate  float64
	Burst int
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Limiter spaces the calls to each integration's CRM: every integration
// has its own token bucket, so one busy portal never slows another. Safe
// for concurrent use.
type Limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu   sync.Mutex
	lims map[string]*rate.Limiter
}

// NewLimiter builds a limiter; see LimiterOptions.
func NewLimiter(o LimiterOptions) *Limiter {
	l := &Limiter{rate: rate.Limit(o.Rate), burst: o.Burst, now: o.Now, sleep: o.Sleep, lims: map[string]*rate.Limiter{}}
	if l.now == nil {
		l.now = time.Now
	}
	if l.sleep == nil {
		l.sleep = sleepCtx
	}
	return l
}

// Wait takes a slot from the integration's bucket, sleeping if needed. It
// gives the slot back and fails at once when the wait would outlast ctx's
// deadline, and gives it back when ctx ends while sleeping.
func (l *Limiter) Wait(ctx context.Context, integrationID string) error {
	lim := l.bucket(integrationID)
	now := l.now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("crm: limiter refused")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && dl.Sub(now) < d {
		r.CancelAt(now)
		return fmt.Errorf("crm: would wait %v, past the context deadline", d)
	}
	if err := l.sleep(ctx, d); err != nil {
		r.CancelAt(l.now())
		return err
	}
	return nil
}

func (l *Limiter) bucket(integrationID string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.lims[integrationID]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.lims[integrationID] = lim
	}
	return lim
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
