package store

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
)

// LatestInbound returns a customer's newest inbound message on a channel
// that the messenger has an id for (the one a read mark names), or
// ErrNotFound.
func (s *Store) LatestInbound(ctx context.Context, channelID, contactID string) (*Message, error) {
	var m Message
	err := s.g(ctx).
		Where("channel_id = ? AND contact_id = ? AND direction = ? AND external_id IS NOT NULL", channelID, contactID, Inbound).
		// Meta's time first: webhooks sent together arrive in any order,
		// so the message stored last need not be the customer's last.
		Order("COALESCE(provider_at, created_at) DESC, created_at DESC, id DESC").First(&m).Error
	if err != nil {
		return nil, notFound(err)
	}
	return &m, nil
}

// MarkInboundRead records that the business told the messenger it read an
// inbound message, so the mark is not sent twice. It reports whether this
// call made the change (false: already marked).
func (s *Store) MarkInboundRead(ctx context.Context, id string, at time.Time) (bool, error) {
	res := s.g(ctx).Model(&Message{}).
		Where("id = ? AND direction = ? AND status <> ?", id, Inbound, string(channel.StatusRead)).
		Updates(map[string]any{"status": string(channel.StatusRead), "read_at": at, "updated_at": Now()})
	if res.Error != nil {
		return false, fmt.Errorf("store: mark inbound read: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}
