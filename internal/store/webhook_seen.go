package store

import (
	"context"
	"fmt"
	"time"
)

// SetChannelWebhookSeen records that a webhook for the channel arrived at
// at. It never moves the mark back (two instances may write out of order).
func (s *Store) SetChannelWebhookSeen(ctx context.Context, channelID string, at time.Time) error {
	err := s.g(ctx).Table("channels").Where("id = ? AND (last_webhook_at IS NULL OR last_webhook_at < ?)", channelID, at).
		Update("last_webhook_at", at).Error
	if err != nil {
		return fmt.Errorf("store: channel webhook seen: %w", err)
	}
	return nil
}
