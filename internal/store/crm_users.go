package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CRMUser is a user of an integration's CRM as last read from it. The
// routing core assigns, notifies and checks access by UserID, the CRM's
// own id.
type CRMUser struct {
	IntegrationID string `gorm:"primaryKey"`
	UserID        string `gorm:"primaryKey"`
	Name          string
	Email         string
	// Active is false for a user the CRM deactivated or no longer lists;
	// such a user is never assigned.
	Active    bool
	UpdatedAt time.Time
}

// ReplaceCRMUsers records the CRM's current user list: the listed users are
// written as given, and every other known user of the integration is
// marked inactive (kept, so the settings that name them still read).
func (s *Store) ReplaceCRMUsers(ctx context.Context, integrationID string, users []CRMUser) error {
	now := Now()
	return s.Tx(ctx, func(tx *gorm.DB) error {
		listed := make([]string, 0, len(users))
		for i := range users {
			u := users[i]
			u.IntegrationID, u.UpdatedAt = integrationID, now
			listed = append(listed, u.UserID)
			err := tx.Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "integration_id"}, {Name: "user_id"}},
				DoUpdates: clause.AssignmentColumns([]string{"name", "email", "active", "updated_at"}),
			}).Create(&u).Error
			if err != nil {
				return fmt.Errorf("store: put crm user: %w", err)
			}
		}
		q := tx.Model(&CRMUser{}).Where("integration_id = ? AND active", integrationID)
		if len(listed) > 0 {
			q = q.Where("user_id NOT IN ?", listed)
		}
		if err := q.Updates(map[string]any{"active": false, "updated_at": now}).Error; err != nil {
			return fmt.Errorf("store: deactivate crm users: %w", err)
		}
		return nil
	})
}

// CRMUsers lists an integration's known users, active or not, by id.
func (s *Store) CRMUsers(ctx context.Context, integrationID string) ([]CRMUser, error) {
	var out []CRMUser
	err := s.g(ctx).Where("integration_id = ?", integrationID).Order("user_id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: crm users: %w", err)
	}
	return out, nil
}
