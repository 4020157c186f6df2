package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// GetBinding returns a binding by its id, or ErrNotFound.
func (s *Store) GetBinding(ctx context.Context, id string) (*ChannelBinding, error) {
	var b ChannelBinding
	if err := s.g(ctx).Where("id = ?", id).First(&b).Error; err != nil {
		return nil, notFound(err)
	}
	return &b, nil
}

// BindingOf returns an integration's binding of a channel, or ErrNotFound.
func (s *Store) BindingOf(ctx context.Context, integrationID, channelID string) (*ChannelBinding, error) {
	var b ChannelBinding
	if err := s.g(ctx).Where("integration_id = ? AND channel_id = ?", integrationID, channelID).First(&b).Error; err != nil {
		return nil, notFound(err)
	}
	return &b, nil
}

// LinksByLocal lists every integration's links of a kind for a local object.
func LinksByLocal(tx *gorm.DB, kind, localID string) ([]CRMLink, error) {
	var out []CRMLink
	if err := tx.Where("kind = ? AND local_id = ?", kind, localID).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: links of %s: %w", localID, err)
	}
	return out, nil
}

// LinksByLocals is LinksByLocal for many local objects in one statement:
// each id's links, in the order they were made. Routing reads the links
// of a group of webhooks' status changes with it.
func LinksByLocals(tx *gorm.DB, kind string, localIDs []string) (map[string][]CRMLink, error) {
	out := map[string][]CRMLink{}
	if len(localIDs) == 0 {
		return out, nil
	}
	var links []CRMLink
	if err := tx.Where("kind = ? AND local_id IN ?", kind, localIDs).Order("id").Find(&links).Error; err != nil {
		return nil, fmt.Errorf("store: links of %d objects: %w", len(localIDs), err)
	}
	for _, l := range links {
		out[l.LocalID] = append(out[l.LocalID], l)
	}
	return out, nil
}

// LinksOfLocal is LinksByLocal outside a transaction.
func (s *Store) LinksOfLocal(ctx context.Context, kind, localID string) ([]CRMLink, error) {
	return LinksByLocal(s.g(ctx), kind, localID)
}

// LocalIDsByRemote lists the local ids an integration links to remoteID
// under a kind.
func (s *Store) LocalIDsByRemote(ctx context.Context, integrationID, kind, remoteID string) ([]string, error) {
	var out []string
	err := s.g(ctx).Model(&CRMLink{}).Where("integration_id = ? AND kind = ? AND remote_id = ?", integrationID, kind, remoteID).
		Pluck("local_id", &out).Error
	if err != nil {
		return nil, fmt.Errorf("store: links to %s: %w", remoteID, err)
	}
	return out, nil
}

// LinksTo lists an integration's links of a kind to remoteID, oldest
// first.
func (s *Store) LinksTo(ctx context.Context, integrationID, kind, remoteID string) ([]CRMLink, error) {
	var out []CRMLink
	err := s.g(ctx).Where("integration_id = ? AND kind = ? AND remote_id = ?", integrationID, kind, remoteID).
		Order("created_at, id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: links to %s: %w", remoteID, err)
	}
	return out, nil
}

// PutLinksTo records several local objects as linked to one remote id
// (see PutLink), in one transaction.
func (s *Store) PutLinksTo(ctx context.Context, integrationID, kind string, localIDs []string, remoteID string) error {
	return s.Tx(ctx, func(tx *gorm.DB) error {
		for _, l := range localIDs {
			if err := PutLink(tx, integrationID, kind, l, remoteID); err != nil {
				return fmt.Errorf("store: link %s: %w", l, err)
			}
		}
		return nil
	})
}

// DeleteLinks removes an integration's links of a kind for these local
// ids.
func (s *Store) DeleteLinks(ctx context.Context, integrationID, kind string, localIDs []string) error {
	return DropLinks(s.g(ctx), integrationID, kind, localIDs)
}

// DropLinks is DeleteLinks in tx, so the links go in the commit that
// makes them needless.
func DropLinks(tx *gorm.DB, integrationID, kind string, localIDs []string) error {
	if len(localIDs) == 0 {
		return nil
	}
	err := tx.Where("integration_id = ? AND kind = ? AND local_id IN ?", integrationID, kind, localIDs).Delete(&CRMLink{}).Error
	if err != nil {
		return fmt.Errorf("store: delete %s links: %w", kind, err)
	}
	return nil
}

// RemoteOf is LinkByLocal outside a transaction.
func (s *Store) RemoteOf(ctx context.Context, integrationID, kind, localID string) (string, error) {
	return LinkByLocal(s.g(ctx), integrationID, kind, localID)
}

// LocalOf is LinkByRemote outside a transaction.
func (s *Store) LocalOf(ctx context.Context, integrationID, kind, remoteID string) (string, error) {
	return LinkByRemote(s.g(ctx), integrationID, kind, remoteID)
}

// UninstallIntegration removes an integration's bindings and then either
// the integration itself (remove) or its tokens, marking it uninstalled
// with reason; in one transaction.
func (s *Store) UninstallIntegration(ctx context.Context, id string, remove bool, reason string) error {
	// After the commit: see feedCacheTTL.
	defer s.feeds.invalidate()
	return s.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("integration_id = ?", id).Delete(&ChannelBinding{}).Error; err != nil {
			return fmt.Errorf("store: unbind integration %s: %w", id, err)
		}
		if remove {
			if err := tx.Where("id = ?", id).Delete(&Integration{}).Error; err != nil {
				return fmt.Errorf("store: delete integration %s: %w", id, err)
			}
			return nil
		}
		err := tx.Model(&Integration{}).Where("id = ?", id).Updates(map[string]any{
			"state": IntegrationUninstalled, "state_reason": reason,
			"access_token": "", "refresh_token": "", "updated_at": Now()}).Error
		if err != nil {
			return fmt.Errorf("store: mark integration %s uninstalled: %w", id, err)
		}
		return nil
	})
}
