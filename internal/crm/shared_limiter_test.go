package crm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// sharedLimiter is a SharedLimiter on db whose sleeps are recorded, not
// slept; the database's clock goes on as it does, so a rate of one call a
// minute keeps every wait far from the few milliseconds the test takes.
func sharedLimiter(db *store.DB, burst int) (*SharedLimiter, *[]time.Duration) {
	var sleeps []time.Duration
	l := NewSharedLimiter(store.New(db, nil), LimiterOptions{Rate: 1.0 / 60, Burst: burst,
		Sleep: func(ctx context.Context, d time.Duration) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			sleeps = append(sleeps, d)
			return nil
		}})
	return l, &sleeps
}

// TestSharedLimiterBurstThenRate: a burst of three goes at once, then each
// call waits one more interval than the last (nothing really slept); two
// limiters on one database share the integration's slots, and another
// integration does not wait behind it.
func TestSharedLimiterBurstThenRate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l, sleeps := sharedLimiter(db, 3)
		other, otherSleeps := sharedLimiter(db, 3)
		for i := range 5 {
			lim := l
			if i%2 == 1 {
				lim = other
			}
			if err := lim.Wait(context.Background(), "a"); err != nil {
				t.Fatal(err)
			}
		}
		// Calls 4 (on other) and 5 (on l) wait about one and two minutes.
		if len(*sleeps) != 1 || len(*otherSleeps) != 1 {
			t.Fatalf("sleeps %v and %v, want one each (burst 3 shared by both limiters)", *sleeps, *otherSleeps)
		}
		if d := (*otherSleeps)[0]; d <= 30*time.Second || d > time.Minute {
			t.Errorf("4th call waits %v, want about a minute", d)
		}
		if d := (*sleeps)[0]; d <= 90*time.Second || d > 2*time.Minute {
			t.Errorf("5th call waits %v, want about two minutes", d)
		}
		if err := l.Wait(context.Background(), "b"); err != nil || len(*sleeps) != 1 {
			t.Errorf("another integration waited: %v %v", *sleeps, err)
		}
	})
}

// TestSharedLimiterGivesBackWhatItDoesNotUse: Limiter's contract. A call
// whose context ends while it sleeps gives its slot back; one whose
// deadline comes before its slot fails at once and takes none.
func TestSharedLimiterGivesBackWhatItDoesNotUse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var sleeps []time.Duration
		cancelled := errors.New("cancelled while sleeping")
		failNext := false
		l := NewSharedLimiter(store.New(db, nil), LimiterOptions{Rate: 1.0 / 60, Burst: 1,
			Sleep: func(ctx context.Context, d time.Duration) error {
				if failNext {
					failNext = false
					return cancelled
				}
				sleeps = append(sleeps, d)
				return nil
			}})
		ctx := context.Background()
		if err := l.Wait(ctx, "a"); err != nil || len(sleeps) != 0 {
			t.Fatalf("first call: %v, slept %v", err, sleeps)
		}
		failNext = true
		if err := l.Wait(ctx, "a"); !errors.Is(err, cancelled) {
			t.Fatalf("cancelled while sleeping: %v", err)
		}
		short, done := context.WithTimeout(ctx, 10*time.Second)
		defer done()
		if err := l.Wait(short, "a"); err == nil {
			t.Fatal("a wait of a minute was taken within a 10s deadline")
		}
		// Both refused calls left the next slot where it was: one interval
		// after the first call, not three.
		if err := l.Wait(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if len(sleeps) != 1 || sleeps[0] <= 30*time.Second || sleeps[0] > time.Minute {
			t.Fatalf("sleeps %v, want one of about a minute", sleeps)
		}
	})
}

// TestNewLimiterFor: PostgreSQL, which several instances may share, gets
// the shared limiter; SQLite, one process, the in-process one.
func TestNewLimiterFor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := NewLimiterFor(store.New(db, nil), LimiterOptions{Rate: 7, Burst: 1})
		_, shared := l.(*SharedLimiter)
		if shared != (db.Dialect == store.Postgres) {
			t.Fatalf("%s: limiter %T", db.Dialect, l)
		}
	})
}
