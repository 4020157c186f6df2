package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Access levels of a CRM user to a channel (item 4). No row means
// AccessNone.
const (
	AccessNone = "none"
	AccessRead = "read"
	AccessSend = "send"
)

// ChannelAccess is one cell of an integration's access matrix.
type ChannelAccess struct {
	IntegrationID string `gorm:"primaryKey"`
	UserID        string `gorm:"primaryKey"`
	ChannelID     string `gorm:"primaryKey"`
	// Level is AccessRead or AccessSend; AccessNone is stored as no row.
	Level string
	// IsDefault marks the user's default outbound channel.
	IsDefault bool
	UpdatedAt time.Time
}

// TableName keeps gorm off its plural guess.
func (ChannelAccess) TableName() string { return "channel_access" }

// ErrAccessInvalid is a matrix the store refuses to write: a level it
// does not know, or two default channels for one user. The routing core
// validates before writing, so meeting it is a bug in the caller.
var ErrAccessInvalid = errors.New("store: invalid access matrix")

// ReplaceAccess makes rows the whole access matrix of the integration, in
// one transaction. Rows with AccessNone are dropped. The caller validates
// (users, bound channels, the default-channel rule); the store still
// refuses unknown levels, a default without send and two defaults for one
// user (ErrAccessInvalid), and writes nothing then.
func (s *Store) ReplaceAccess(ctx context.Context, integrationID string, rows []ChannelAccess) error {
	return s.Tx(ctx, func(tx *gorm.DB) error { return replaceAccess(tx, integrationID, rows) })
}

func replaceAccess(tx *gorm.DB, integrationID string, rows []ChannelAccess) error {
	defaults := map[string]string{}
	for _, r := range rows {
		switch r.Level {
		case AccessNone, "", AccessRead, AccessSend:
		default:
			return fmt.Errorf("%w: level %q", ErrAccessInvalid, r.Level)
		}
		if !r.IsDefault {
			continue
		}
		if r.Level != AccessSend {
			return fmt.Errorf("%w: user %s's default channel %s has no send access", ErrAccessInvalid, r.UserID, r.ChannelID)
		}
		if prev, dup := defaults[r.UserID]; dup {
			return fmt.Errorf("%w: user %s has two default channels, %s and %s", ErrAccessInvalid, r.UserID, prev, r.ChannelID)
		}
		defaults[r.UserID] = r.ChannelID
	}
	now := Now()
	if err := tx.Where("integration_id = ?", integrationID).Delete(&ChannelAccess{}).Error; err != nil {
		return fmt.Errorf("store: clear access: %w", err)
	}
	for i := range rows {
		r := rows[i]
		if r.Level == AccessNone || r.Level == "" {
			continue
		}
		r.IntegrationID, r.UpdatedAt = integrationID, now
		if err := tx.Create(&r).Error; err != nil {
			return fmt.Errorf("store: put access: %w", err)
		}
	}
	return nil
}

// PutRoutingSettings writes an integration's routing settings (the JSON
// of routing.IntegrationSettings) and, unless access is nil, replaces its
// access matrix, in one transaction: a refused matrix leaves the settings
// as they were too.
func (s *Store) PutRoutingSettings(ctx context.Context, integrationID, settings string, access *[]ChannelAccess) error {
	return s.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Integration{}).Where("id = ?", integrationID).Updates(map[string]any{"settings": settings, "updated_at": Now()})
		if res.Error != nil {
			return fmt.Errorf("store: put integration settings: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if access == nil {
			return nil
		}
		return replaceAccess(tx, integrationID, *access)
	})
}

// AccessMatrix lists the integration's non-"none" access rows by user, then
// channel.
func (s *Store) AccessMatrix(ctx context.Context, integrationID string) ([]ChannelAccess, error) {
	var out []ChannelAccess
	err := s.g(ctx).Where("integration_id = ?", integrationID).Order("user_id, channel_id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: access matrix: %w", err)
	}
	return out, nil
}

// AccessLevel is the user's access to the channel within the integration:
// AccessNone when no row grants any.
func (s *Store) AccessLevel(ctx context.Context, integrationID, userID, channelID string) (string, error) {
	var r ChannelAccess
	err := s.g(ctx).Where("integration_id = ? AND user_id = ? AND channel_id = ?", integrationID, userID, channelID).First(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return AccessNone, nil
	}
	if err != nil {
		return "", fmt.Errorf("store: access level: %w", err)
	}
	return r.Level, nil
}

// UsersWithAccess lists the active CRM users who can at least read the
// channel within the integration: those an unanswered customer's
// escalation reaches. It reads rows only: while an integration's access
// is still open (routing.AccessOpen: never configured) it has none, and
// the caller takes every active user instead.
func (s *Store) UsersWithAccess(ctx context.Context, integrationID, channelID string) ([]string, error) {
	var out []string
	err := s.g(ctx).Table("channel_access").Select("channel_access.user_id").
		Joins("JOIN crm_users ON crm_users.integration_id = channel_access.integration_id AND crm_users.user_id = channel_access.user_id").
		Where("channel_access.integration_id = ? AND channel_access.channel_id = ? AND crm_users.active", integrationID, channelID).
		Order("channel_access.user_id").Pluck("channel_access.user_id", &out).Error
	if err != nil {
		return nil, fmt.Errorf("store: users with access: %w", err)
	}
	return out, nil
}
