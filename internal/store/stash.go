package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// A stash keeps a sealed secret for a while under a provider's key, in the
// OAuth states table: work that spent a single-use credential (an
// authorisation code) keeps what it got for it, so that a retry of the
// work uses that instead of spending the credential again.

func stashState(provider, key string) string { return provider + ":stash:" + key }

// StashSecret seals value and keeps it under provider and key until ttl
// passes, replacing one kept before.
func (s *Store) StashSecret(ctx context.Context, provider, key, value string, ttl time.Duration) error {
	state := stashState(provider, key)
	sealed, err := s.box.Seal(value, state)
	if err != nil {
		return fmt.Errorf("store: seal stash: %w", err)
	}
	now := Now()
	st := OAuthState{State: state, Provider: provider, Domain: sealed, ExpiresAt: now.Add(ttl), CreatedAt: now}
	err = s.g(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "state"}},
		DoUpdates: clause.AssignmentColumns([]string{"domain", "expires_at"})}).Create(&st).Error
	if err != nil {
		return fmt.Errorf("store: stash: %w", err)
	}
	return nil
}

// StashedSecret opens the value kept under provider and key; ErrNotFound
// when there is none or it expired.
func (s *Store) StashedSecret(ctx context.Context, provider, key string) (string, error) {
	var st OAuthState
	state := stashState(provider, key)
	if err := s.g(ctx).Where("state = ? AND provider = ?", state, provider).First(&st).Error; err != nil {
		return "", notFound(err)
	}
	if Now().After(st.ExpiresAt) {
		return "", ErrNotFound
	}
	v, err := s.box.Open(st.Domain, state)
	if err != nil {
		return "", fmt.Errorf("store: open stash: %w", err)
	}
	return v, nil
}

// DropStashed forgets the value kept under provider and key.
func (s *Store) DropStashed(ctx context.Context, provider, key string) error {
	if err := s.g(ctx).Where("state = ?", stashState(provider, key)).Delete(&OAuthState{}).Error; err != nil {
		return fmt.Errorf("store: drop stash: %w", err)
	}
	return nil
}
