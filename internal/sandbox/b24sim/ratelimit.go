package b24sim

import "time"

// leakyBucket is Bitrix24's per-portal request limiter (contract §2.4):
// every request adds one to a level that drains at rate per second, and a
// request that would push the level past burst is refused. It is driven by
// the simulator's Clock so tests can step time. Not goroutine-safe: callers
// hold the Server lock.
type leakyBucket struct {
	level float64
	last  time.Time
}

// hit records one request and reports whether it is allowed. Refused
// requests do not raise the level, so a client that backs off recovers at
// exactly the documented drain rate.
func (b *leakyBucket) hit(now time.Time, rate float64, burst int) bool {
	if !b.last.IsZero() {
		// A clock stepping backwards must not refill or drain; re-anchor.
		if elapsed := now.Sub(b.last); elapsed > 0 {
			b.level -= elapsed.Seconds() * rate
			if b.level < 0 {
				b.level = 0
			}
		}
	}
	b.last = now
	if b.level+1 > float64(burst) {
		return false
	}
	b.level++
	return true
}
