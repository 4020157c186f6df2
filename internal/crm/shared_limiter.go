package crm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/switchboard/switchboard/internal/store"
)

// Waiter takes one slot of a key's rate before a call, sleeping until the
// slot comes: *Limiter (one process) and *SharedLimiter (every instance on
// one database) are two.
type Waiter interface {
	Wait(ctx context.Context, key string) error
}

// NewLimiterFor returns the limiter of CRM calls for a gateway on st's
// database: on PostgreSQL, where several instances may serve the same
// accounts, a SharedLimiter (issue 8: amoCRM's 7 requests per second are
// per account, not per instance); on SQLite, which serves exactly one
// process, the in-process Limiter, which spaces calls the same way
// without a database write per call.
func NewLimiterFor(st *store.Store, o LimiterOptions) Waiter {
	if st.DB.Dialect == store.Postgres {
		return NewSharedLimiter(st, o)
	}
	return NewLimiter(o)
}

// rateSlots is what SharedLimiter needs from the store.
type rateSlots interface {
	TakeRateSlot(ctx context.Context, key string, p store.RatePolicy, maxWait time.Duration) (store.RateSlot, error)
	GiveBackRateSlot(ctx context.Context, key string, p store.RatePolicy, slot store.RateSlot) (bool, error)
}

// giveBackTimeout bounds the write that returns an unused slot: the
// caller's context has ended by then, so it cannot bound it.
const giveBackTimeout = 5 * time.Second

// SharedLimiter spaces each integration's CRM calls across every gateway
// instance on one database: each Wait takes the integration's next slot in
// one statement on the database (store.TakeRateSlot, a GCRA on the
// database's clock), then sleeps until the slot in this process. Its
// contract is Limiter's: the same rate and burst, a wait that would
// outlast ctx's deadline fails at once without taking a slot, and a slot
// whose caller's context ends while it sleeps is given back. Safe for
// concurrent use.
type SharedLimiter struct {
	slots  rateSlots
	policy store.RatePolicy
	sleep  func(ctx context.Context, d time.Duration) error
}

// NewSharedLimiter builds a limiter on st; o.Now is unused (the database
// keeps the time), o.Sleep is for tests.
func NewSharedLimiter(st *store.Store, o LimiterOptions) *SharedLimiter {
	l := &SharedLimiter{slots: st, sleep: o.Sleep,
		policy: store.RatePolicy{Interval: time.Duration(float64(time.Second) / o.Rate), Burst: o.Burst}}
	if l.sleep == nil {
		l.sleep = sleepCtx
	}
	return l
}

// Wait takes a slot of the integration's rate, sleeping until it comes.
func (l *SharedLimiter) Wait(ctx context.Context, integrationID string) error {
	maxWait := time.Duration(math.MaxInt64)
	if dl, ok := ctx.Deadline(); ok {
		maxWait = time.Until(dl)
	}
	slot, err := l.slots.TakeRateSlot(ctx, integrationID, l.policy, maxWait)
	if err != nil {
		return fmt.Errorf("crm: rate limiter: %w", err)
	}
	d := slot.Wait()
	if !slot.Granted {
		return fmt.Errorf("crm: would wait %v, past the context deadline", d)
	}
	if d <= 0 {
		return nil
	}
	if err := l.sleep(ctx, d); err != nil {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), giveBackTimeout)
		defer cancel()
		if _, gerr := l.slots.GiveBackRateSlot(gctx, integrationID, l.policy, slot); gerr != nil {
			return errors.Join(err, fmt.Errorf("crm: rate limiter: %w", gerr))
		}
		return err
	}
	return nil
}
