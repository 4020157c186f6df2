package crm

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A limiter driven by a fake clock: sleeping moves time on.
func fakeLimiter(rate float64, burst int) (*Limiter, *[]time.Duration) {
	now := time.Now()
	var sleeps []time.Duration
	l := NewLimiter(LimiterOptions{Rate: rate, Burst: burst,
		Now: func() time.Time { return now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			sleeps = append(sleeps, d)
			now = now.Add(d)
			return nil
		}})
	return l, &sleeps
}

func TestLimiterPerIntegration(t *testing.T) {
	l, sleeps := fakeLimiter(2, 3)
	for range 5 {
		if err := l.Wait(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
	}
	if want := []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}; !slices.Equal(*sleeps, want) {
		t.Errorf("sleeps %v, want %v (burst 3, then 2/s)", *sleeps, want)
	}
	if err := l.Wait(context.Background(), "b"); err != nil || len(*sleeps) != 2 {
		t.Errorf("another integration waited: %v %v", *sleeps, err)
	}
}

func TestLimiterGivesBackWhatItDoesNotUse(t *testing.T) {
	l, sleeps := fakeLimiter(1, 1)
	if err := l.Wait(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	short, done := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer done()
	if err := l.Wait(short, "a"); err == nil {
		t.Error("a wait past the deadline was taken")
	}
	// The two refused reservations were given back: one interval, not three.
	if err := l.Wait(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if len(*sleeps) != 1 || (*sleeps)[0] > time.Second {
		t.Errorf("sleeps %v", *sleeps)
	}
}
