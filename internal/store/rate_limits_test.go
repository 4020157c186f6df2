package store_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// rateStores are n stores on one database, as n gateway instances would
// have: on PostgreSQL each with a pool of its own, on SQLite (one process
// by design) sharing the one connection.
func rateStores(t *testing.T, n int, postgres bool) []*store.Store {
	t.Helper()
	out := make([]*store.Store, n)
	if !postgres {
		db := storetest.SQLite(t)
		for i := range out {
			out[i] = store.New(db, nil)
		}
		return out
	}
	url := storetest.URL(t)
	for i := range out {
		db, err := store.Open(context.Background(), url, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out[i] = store.New(db, nil)
	}
	return out
}

// eachRateEngine runs f on SQLite and, with TEST_DATABASE_URL, PostgreSQL.
func eachRateEngine(t *testing.T, f func(t *testing.T, postgres bool)) {
	t.Run("sqlite", func(t *testing.T) { f(t, false) })
	if os.Getenv(storetest.EnvURL) != "" {
		t.Run("postgres", func(t *testing.T) { f(t, true) })
	}
}

// TestRateSlotsNeverExceedTheRate: 8 instances × 30 callers' worth of
// slots taken at once on one key are never more than rate×window+burst in
// any window (checked on the slot times handed out, not by sleeping), and
// come as densely as the rate allows: no caller is pushed later than the
// slots before it require.
func TestRateSlotsNeverExceedTheRate(t *testing.T) {
	eachRateEngine(t, func(t *testing.T, postgres bool) {
		const instances, each = 8, 30
		p := store.RatePolicy{Interval: 20 * time.Millisecond, Burst: 3}
		sts := rateStores(t, instances, postgres)
		var mu sync.Mutex
		var slots []store.RateSlot
		var wg sync.WaitGroup
		for _, st := range sts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					s, err := st.TakeRateSlot(context.Background(), "integration-a", p, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if !s.Granted {
						t.Errorf("slot refused within an hour's wait: %+v", s)
						return
					}
					mu.Lock()
					slots = append(slots, s)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if len(slots) != instances*each {
			t.Fatalf("%d slots, want %d", len(slots), instances*each)
		}
		at := make([]time.Time, len(slots))
		var lastNow time.Time
		for i, s := range slots {
			at[i] = s.At
			if s.Now.After(lastNow) {
				lastNow = s.Now
			}
			if s.At.Before(s.Now) {
				t.Fatalf("slot %v before its own now %v", s.At, s.Now)
			}
		}
		slices.SortFunc(at, time.Time.Compare)
		for _, w := range []time.Duration{0, p.Interval / 2, p.Interval, 3 * p.Interval, time.Second, 3 * time.Second} {
			limit := int(w/p.Interval) + p.Burst
			most := 0
			for i := range at {
				j := i
				for j < len(at) && at[j].Sub(at[i]) <= w {
					j++
				}
				most = max(most, j-i)
			}
			if most > limit {
				t.Errorf("%d slots within %v, limit %d (%d/s, burst %d)", most, w, limit, int(time.Second/p.Interval), p.Burst)
			}
			t.Logf("window %v: at most %d slots (limit %d)", w, most, limit)
		}
		// Dense: the i-th slot is no later than the last caller's now plus
		// the intervals the slots before it use up beyond the burst.
		for i, a := range at {
			if bound := lastNow.Add(time.Duration(max(i-(p.Burst-1), 0)) * p.Interval); a.After(bound) {
				t.Fatalf("slot %d at %v, later than %v: the limiter held a caller back more than the rate needs", i, a, bound)
			}
		}
	})
}

// TestRateSlotsDeadlineAndGiveBack: a caller that cannot wait for its slot
// takes nothing; an unused slot goes back only while it is the latest, so
// a given-back slot is never handed out twice.
func TestRateSlotsDeadlineAndGiveBack(t *testing.T) {
	eachRateEngine(t, func(t *testing.T, postgres bool) {
		ctx := context.Background()
		st := rateStores(t, 1, postgres)[0]
		// A minute apart: the database's clock never catches up within
		// the test, so every slot is exactly one interval after the last.
		p := store.RatePolicy{Interval: time.Minute, Burst: 1}
		take := func(maxWait time.Duration) store.RateSlot {
			t.Helper()
			s, err := st.TakeRateSlot(ctx, "k", p, maxWait)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		a1 := take(0)
		if !a1.Granted || a1.Wait() != 0 {
			t.Fatalf("the first slot of an idle key waits: %+v", a1)
		}
		a2 := take(time.Hour)
		if !a2.Granted || !a2.At.Equal(a1.At.Add(time.Minute)) {
			t.Fatalf("second slot %+v, want one minute after %v", a2, a1.At)
		}
		refused := take(30 * time.Second)
		if refused.Granted || refused.Wait() < time.Minute {
			t.Fatalf("a slot two minutes out was granted to a caller waiting 30s at most: %+v", refused)
		}
		a3 := take(time.Hour)
		if !a3.At.Equal(a2.At.Add(time.Minute)) {
			t.Fatalf("after a refusal the next slot is %v, want %v: the refused caller took one", a3.At, a2.At.Add(time.Minute))
		}
		// a3 is the latest: it goes back, and the next caller gets it.
		if ok, err := st.GiveBackRateSlot(ctx, "k", p, a3); err != nil || !ok {
			t.Fatalf("give back the latest slot: %v %v", ok, err)
		}
		a4 := take(time.Hour)
		if !a4.At.Equal(a3.At) {
			t.Fatalf("given-back slot %v, next caller got %v", a3.At, a4.At)
		}
		// a4 is no longer the latest once a5 is taken: giving it back would
		// let a6 share a5's slot.
		a5 := take(time.Hour)
		if ok, err := st.GiveBackRateSlot(ctx, "k", p, a4); err != nil || ok {
			t.Fatalf("a slot with a later one after it went back: %v %v", ok, err)
		}
		if a6 := take(time.Hour); !a6.At.Equal(a5.At.Add(time.Minute)) {
			t.Fatalf("slot %v after %v: two callers share a slot", a6.At, a5.At)
		}
		// Another key is its own: idle, so at once.
		if b := take2(t, st, "other", p); !b.Granted || b.Wait() != 0 {
			t.Fatalf("another key waited: %+v", b)
		}
	})
}

func take2(t *testing.T, st *store.Store, key string, p store.RatePolicy) store.RateSlot {
	t.Helper()
	s, err := st.TakeRateSlot(context.Background(), key, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
