package store

import (
	"sync"
	"time"
)

// channelCacheTTL is how long this instance trusts a channel it read for
// routing webhooks. Every delivery used to pay one query for it; a change
// made through this instance clears the cache at once, and one made
// through another instance (same database) is seen within this time. A
// delivery arriving within it of a change elsewhere is stored as if it had
// come that much earlier: the lookup was always outside the storing
// transaction, so that race existed before, only shorter.
const channelCacheTTL = time.Second

// channelCache keeps the channels ChannelByAccount found, by type and
// account id. Only channels found are kept: an unknown account is asked
// again each time, so a channel created on another instance receives at
// once.
type channelCache struct {
	mu  sync.Mutex
	gen uint64 // bumped by every invalidation
	m   map[channelKey]channelEntry
}

type channelKey struct{ typ, account string }

type channelEntry struct {
	ch      Channel
	expires time.Time
}

// get returns a copy of the cached channel (callers and hooks may change
// theirs) and the generation to hand to put after a miss.
func (c *channelCache) get(k channelKey, now time.Time) (*Channel, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok && now.Before(e.expires) {
		ch := e.ch
		return &ch, c.gen
	}
	return nil, c.gen
}

// put keeps ch unless the cache was invalidated since gen was read: a
// lookup that raced a change must not bring the old row back.
func (c *channelCache) put(k channelKey, ch *Channel, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil {
		c.m = map[channelKey]channelEntry{}
	}
	c.m[k] = channelEntry{ch: *ch, expires: now.Add(channelCacheTTL)}
}

// invalidate forgets every channel; channels change rarely, so clearing
// all is simpler than finding the entry and as cheap.
func (c *channelCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m = nil
}

// ForgetChannels drops the channels this instance cached for routing
// webhooks. The store's own channel writes do it by themselves; it is for
// a test or tool that changes a channel row behind the store's back and
// must see the change before channelCacheTTL passes.
func (s *Store) ForgetChannels() { s.channels.invalidate() }
