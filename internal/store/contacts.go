package store

import (
	"context"
	"fmt"

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
