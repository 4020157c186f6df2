package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
)

// AccountHeldElsewhere reports whether a channel of another workspace,
// in any state (disabled included), uses the account: such a number is
// that workspace's to re-activate, and only the operator may give it to
// someone else.
func (s *Store) AccountHeldElsewhere(ctx context.Context, typ channel.Type, accountID, workspaceID string) (bool, error) {
	var n int64
	err := s.g(ctx).Model(&Channel{}).
		Where("type = ? AND account_id = ? AND workspace_id <> ?", string(typ), accountID, workspaceID).
		Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("store: account held elsewhere: %w", err)
	}
	return n > 0, nil
}

// MoveChannel gives a channel, with its history, to another workspace in
// one transaction: the channel and every row scoped by workspace that
// belongs to it (contacts, messages, media) move; its bindings to the old
// workspace's CRM integrations are removed, with what those integrations
// learned about its contacts and messages (crm_links) and their dialogs,
// so the old tenant's CRM can neither receive its new messages nor reach
// its customers.
// It returns the channel as moved.
func (s *Store) MoveChannel(ctx context.Context, id, workspaceID string) (*Channel, error) {
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		var ch Channel
		if err := tx.Where("id = ?", id).First(&ch).Error; err != nil {
			return notFound(err)
		}
		var ws Workspace
		if err := tx.Where("id = ?", workspaceID).First(&ws).Error; err != nil {
			return notFound(err)
		}
		if ch.WorkspaceID == workspaceID {
			return nil
		}
		var bindings []ChannelBinding
		if err := tx.Where("channel_id = ?", id).Find(&bindings).Error; err != nil {
			return err
		}
		for _, b := range bindings {
			// Links are per integration; drop the ones naming this
			// channel's contacts, messages and the binding itself.
			err := tx.Where("integration_id = ? AND (local_id IN (SELECT id FROM contacts WHERE channel_id = ?)"+
				" OR local_id IN (SELECT id FROM messages WHERE channel_id = ?) OR local_id LIKE ?)",
				b.IntegrationID, id, id, b.ID+":%").Delete(&CRMLink{}).Error
			if err != nil {
				return fmt.Errorf("crm links: %w", err)
			}
		}
		if err := tx.Where("channel_id = ?", id).Delete(&ChannelBinding{}).Error; err != nil {
			return fmt.Errorf("bindings: %w", err)
		}
		// Dialogs are per integration, and those integrations stay behind:
		// their owners and CRM records mean nothing in the new workspace.
		if err := tx.Where("channel_id = ?", id).Delete(&Dialog{}).Error; err != nil {
			return fmt.Errorf("dialogs: %w", err)
		}
		now := Now()
		for _, m := range []any{&Contact{}, &Message{}, &Media{}} {
			if err := tx.Model(m).Where("channel_id = ?", id).
				Updates(map[string]any{"workspace_id": workspaceID, "updated_at": now}).Error; err != nil {
				return err
			}
		}
		return tx.Model(&Channel{}).Where("id = ?", id).
			Updates(map[string]any{"workspace_id": workspaceID, "updated_at": now}).Error
	})
	// After the commit: a webhook must not keep storing into the old
	// workspace from this instance's cache.
	s.channels.invalidate()
	s.feeds.invalidate() // its bindings are gone
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: move channel: %w", err)
	}
	return s.GetChannel(ctx, All, id)
}
