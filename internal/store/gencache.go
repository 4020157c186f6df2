package store

import (
	"sync"
	"time"
)

// genCache is a small per-instance cache whose entries expire after a
// time-to-live and that one invalidation empties at once. A lookup that
// missed reads the generation first and hands it to put: a value read
// before an invalidation is never kept after it, since that lookup raced
// a change and may carry the old rows. Values are copied in and out with
// clone (nil: a plain copy), so a caller may change what it got.
type genCache[K comparable, V any] struct {
	ttl   time.Duration
	clone func(*V) V

	mu  sync.Mutex
	gen uint64 // bumped by every invalidation
	m   map[K]genEntry[V]
}

type genEntry[V any] struct {
	v       V
	expires time.Time
}

func (c *genCache[K, V]) copyOf(v *V) V {
	if c.clone != nil {
		return c.clone(v)
	}
	return *v
}

// get returns a copy of the cached value (nil when there is none or it
// expired) and the generation to hand to put after a miss.
func (c *genCache[K, V]) get(k K, now time.Time) (*V, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok && now.Before(e.expires) {
		v := c.copyOf(&e.v)
		return &v, c.gen
	}
	return nil, c.gen
}

// put keeps a copy of v unless the cache was invalidated since gen was
// read.
func (c *genCache[K, V]) put(k K, v *V, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil {
		c.m = map[K]genEntry[V]{}
	}
	c.m[k] = genEntry[V]{v: c.copyOf(v), expires: now.Add(c.ttl)}
}

// generation is the current generation, for telling whether something
// invalidated the cache meanwhile.
func (c *genCache[K, V]) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// invalidate forgets every entry: what these caches hold changes rarely,
// and clearing all is simpler than finding the entries and as cheap.
func (c *genCache[K, V]) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m = nil
}
