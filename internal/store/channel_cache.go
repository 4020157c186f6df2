package store

import "time"

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
type channelCache = genCache[channelKey, Channel]

type channelKey struct{ typ, account string }

// ForgetChannels drops the channels this instance cached for routing
// webhooks. The store's own channel writes do it by themselves; it is for
// a test or tool that changes a channel row behind the store's back and
// must see the change before channelCacheTTL passes.
func (s *Store) ForgetChannels() { s.channels.invalidate() }

// CacheChannelsFor sets how long this store trusts a channel it found
// (channelCacheTTL unless set). Tests that hold SQLite's only connection
// in an open transaction need every later lookup served from memory,
// however slowly a loaded machine runs them.
func (s *Store) CacheChannelsFor(d time.Duration) {
	s.channels.mu.Lock()
	defer s.channels.mu.Unlock()
	s.channels.ttl = d
}
