package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
)

// MarkMessageDeleted marks a message the customer unsent; its text stays.
func MarkMessageDeleted(tx *gorm.DB, id string) error {
	err := tx.Model(&Message{}).Where("id = ?", id).
		Updates(map[string]any{"status": string(channel.StatusDeleted), "updated_at": Now()}).Error
	if err != nil {
		return fmt.Errorf("store: mark message %s deleted: %w", id, err)
	}
	return nil
}

// ContactByID returns a contact by its id, or ErrNotFound.
func (s *Store) ContactByID(ctx context.Context, id string) (*Contact, error) {
	var c Contact
	if err := s.g(ctx).Where("id = ?", id).First(&c).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// ProfileUpdate is what a messenger told about a customer; empty fields
// change nothing.
type ProfileUpdate struct {
	Name      string
	Username  string
	AvatarURL string
}

// UpdateContactProfile writes the non-empty fields of p.
func (s *Store) UpdateContactProfile(ctx context.Context, id string, p ProfileUpdate) error {
	set := map[string]any{"updated_at": Now()}
	for col, v := range map[string]string{"name": p.Name, "username": p.Username, "avatar_url": p.AvatarURL} {
		if v != "" {
			set[col] = v
		}
	}
	if err := s.g(ctx).Model(&Contact{}).Where("id = ?", id).Updates(set).Error; err != nil {
		return fmt.Errorf("store: contact %s profile: %w", id, err)
	}
	return nil
}

// ContactsByExternalIDs lists a workspace's contacts with these external
// ids (a phone's digits on WhatsApp), in any of its channels.
func (s *Store) ContactsByExternalIDs(ctx context.Context, workspaceID string, externalIDs []string) ([]Contact, error) {
	var out []Contact
	if err := s.g(ctx).Where("workspace_id = ? AND external_id IN ?", workspaceID, externalIDs).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: contacts by external id: %w", err)
	}
	return out, nil
}

// ContactsByIDs lists a workspace's contacts with these ids.
func (s *Store) ContactsByIDs(ctx context.Context, workspaceID string, ids []string) ([]Contact, error) {
	var out []Contact
	if err := s.g(ctx).Where("workspace_id = ? AND id IN ?", workspaceID, ids).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: contacts by id: %w", err)
	}
	return out, nil
}

// BackdateContactInbound moves a channel's customer's last inbound moment
// (the contact's and its dialogs') back to at, as if they had last written
// then: the customer-service window is reckoned from it. It never moves a
// moment forward. The demo's "close the 24-hour window" is its reason: a
// person trying the template picker should not wait a day. ErrNotFound
// when the customer never wrote to the channel.
func (s *Store) BackdateContactInbound(ctx context.Context, channelID, externalID string, at time.Time) error {
	return s.Tx(ctx, func(tx *gorm.DB) error {
		var c Contact
		if err := tx.Where("channel_id = ? AND external_id = ?", channelID, externalID).First(&c).Error; err != nil {
			return notFound(err)
		}
		if err := tx.Model(&Contact{}).Where("id = ? AND last_inbound_at > ?", c.ID, at).
			Updates(map[string]any{"last_inbound_at": at, "updated_at": Now()}).Error; err != nil {
			return fmt.Errorf("store: backdate contact %s: %w", c.ID, err)
		}
		if err := tx.Model(&Dialog{}).Where("contact_id = ? AND last_inbound_at > ?", c.ID, at).
			Update("last_inbound_at", at).Error; err != nil {
			return fmt.Errorf("store: backdate contact %s's dialogs: %w", c.ID, err)
		}
		// The open chats follow messages.updated_at (their event
		// stream): the customer's latest message is touched, so that
		// they fetch the conversation again and show the closed window.
		if err := tx.Exec(`UPDATE messages SET updated_at = ? WHERE id = (SELECT MAX(id) FROM messages WHERE contact_id = ? AND direction = ?)`,
			Now(), c.ID, Inbound).Error; err != nil {
			return fmt.Errorf("store: backdate contact %s: touch its latest message: %w", c.ID, err)
		}
		return nil
	})
}
