package store

import (
	"testing"
	"time"
)

// A lookup that started before an invalidation (it read the old rows)
// does not put them back; one that started after does.
func TestFeedCachePutAfterInvalidationIsDropped(t *testing.T) {
	c := feedCache{ttl: feedCacheTTL, clone: cloneFeed}
	now := time.Now()
	old := &ChannelFeed{Routing: ChannelRouting{ChannelID: "c", Mode: RoutingAll, Config: "old"}}
	if f, _ := c.get("c", now); f != nil {
		t.Fatalf("empty cache returned %+v", f)
	}
	_, gen := c.get("c", now)
	c.invalidate() // a change commits while the lookup reads
	c.put("c", old, gen, now)
	if f, _ := c.get("c", now); f != nil {
		t.Fatalf("a lookup that raced a change brought the old feed back: %+v", f)
	}
	_, gen = c.get("c", now)
	c.put("c", old, gen, now)
	if f, _ := c.get("c", now); f == nil || f.Routing.Config != "old" {
		t.Fatalf("feed not cached: %+v", f)
	}
	if f, _ := c.get("c", now.Add(feedCacheTTL)); f != nil {
		t.Fatalf("feed kept past its TTL: %+v", f)
	}
}
