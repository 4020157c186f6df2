package messaging

import (
	"context"
	"sync"
	"time"
)

// webhookSeenEvery is how often, at most, a channel's "last webhook seen"
// is written per gateway instance: the channels page shows it to the
// minute, and a busy channel must not pay one more write per delivery.
const webhookSeenEvery = time.Minute

// webhookMarks remembers when each channel's mark was last written.
type webhookMarks struct {
	mu sync.Mutex
	at map[string]time.Time
}

// webhookSeen records that a webhook for the channel arrived now, unless
// this instance recorded one less than webhookSeenEvery ago. A failed
// write is logged and tried again with the next webhook: the mark is
// information, the delivery itself is stored already.
func (s *Service) webhookSeen(ctx context.Context, channelID string) {
	now := s.now().UTC()
	m := &s.marks
	m.mu.Lock()
	if m.at == nil {
		m.at = map[string]time.Time{}
	}
	if last, ok := m.at[channelID]; ok && now.Sub(last) < webhookSeenEvery && now.After(last) {
		m.mu.Unlock()
		return
	}
	m.at[channelID] = now
	m.mu.Unlock()
	if err := s.store.SetChannelWebhookSeen(ctx, channelID, now); err != nil {
		s.log.Error("could not record the channel's last webhook", "channel_id", channelID, "err", err)
		m.mu.Lock()
		delete(m.at, channelID)
		m.mu.Unlock()
	}
}
