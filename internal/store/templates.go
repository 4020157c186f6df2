package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ChannelTemplate is one message template of a channel's business account,
// as the last refresh read it.
type ChannelTemplate struct {
	ChannelID  string `gorm:"primaryKey"`
	Name       string `gorm:"primaryKey"`
	Language   string `gorm:"primaryKey"`
	Category   string
	Status     string
	Components string // the messenger's JSON array
	SyncedAt   time.Time
}

// ReplaceTemplates makes ts the channel's whole set of templates in one
// transaction, so a reader sees the old set or the new one, never a mix;
// also (may be nil) runs in the same transaction, e.g. to enqueue the next
// refresh.
func (s *Store) ReplaceTemplates(ctx context.Context, channelID string, ts []ChannelTemplate, also func(tx *gorm.DB) error) error {
	now := Now()
	return s.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("channel_id = ?", channelID).Delete(&ChannelTemplate{}).Error; err != nil {
			return fmt.Errorf("store: clear templates: %w", err)
		}
		seen := map[[2]string]bool{}
		for i := range ts {
			t := ts[i]
			// Graph lists a name+language once; a repeat would break the key.
			k := [2]string{t.Name, t.Language}
			if seen[k] {
				continue
			}
			seen[k] = true
			t.ChannelID, t.SyncedAt = channelID, now
			if t.Components == "" {
				t.Components = "[]"
			}
			if err := tx.Create(&t).Error; err != nil {
				return fmt.Errorf("store: put template: %w", err)
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
}

// Templates lists a channel's stored templates by name and language.
func (s *Store) Templates(ctx context.Context, channelID string) ([]ChannelTemplate, error) {
	var out []ChannelTemplate
	if err := s.g(ctx).Where("channel_id = ?", channelID).Order("name, language").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list templates: %w", err)
	}
	return out, nil
}

// Template is one of a channel's synced templates by name and language,
// ErrNotFound when the channel has no such template (yet).
func (s *Store) Template(ctx context.Context, channelID, name, language string) (*ChannelTemplate, error) {
	var out ChannelTemplate
	err := s.g(ctx).Where("channel_id = ? AND name = ? AND language = ?", channelID, name, language).Take(&out).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get template: %w", err)
	}
	return &out, nil
}
