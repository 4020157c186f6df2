package metasim

import "time"

// bucket is a token bucket driven by the simulator's Clock rather than wall
// time, so tests can step time and hit or clear limits deterministically.
type bucket struct {
	tokens float64
	last   time.Time
}

// take consumes one token if available. rate is tokens per second and burst
// the bucket size. Not goroutine-safe: callers hold the Server lock.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
		b.last = now
	}
	// A clock that steps backwards (tests resetting a fake clock) must not
	// drain the bucket; just re-anchor.
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens += elapsed.Seconds() * rate
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
