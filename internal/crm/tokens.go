package crm

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/internal/store"
)

// Tokens keeps integrations' OAuth tokens in the database, sealed, with
// each integration's refreshes serialised (store.RefreshTokens: a mutex in
// this process and the row lock on PostgreSQL). CRMs that rotate the
// refresh token on every use (Bitrix24, amoCRM) lose the integration if
// two refreshes race, so every refresh goes through here.
type Tokens struct {
	st *store.Store
}

// NewTokens keeps tokens in st.
func NewTokens(st *store.Store) *Tokens { return &Tokens{st: st} }

// Grant is what an OAuth server answered a refresh with.
type Grant struct {
	AccessToken  string
	RefreshToken string
	// Expiry is when AccessToken dies; zero keeps the stored one.
	Expiry time.Time
}

// Load returns an integration with its unsealed secrets.
func (t *Tokens) Load(ctx context.Context, integrationID string) (*store.Integration, store.IntegrationSecrets, error) {
	in, err := t.st.GetIntegration(ctx, store.All, integrationID)
	if err != nil {
		return nil, store.IntegrationSecrets{}, fmt.Errorf("crm: tokens of %s: %w", integrationID, err)
	}
	sec, err := t.st.Secrets(in)
	if err != nil {
		return nil, store.IntegrationSecrets{}, fmt.Errorf("crm: tokens of %s: %w", integrationID, err)
	}
	return in, sec, nil
}

// Refresh runs fn holding the integration's refresh lock; fn sees the
// integration and secrets as stored under the lock and returns the new
// grant, stored before the lock is released. An fn error stores nothing
// and is returned as it is; a grant equal to the stored tokens writes
// nothing (someone else refreshed already).
func (t *Tokens) Refresh(ctx context.Context, integrationID string, fn func(in *store.Integration, sec store.IntegrationSecrets) (Grant, error)) (*store.Integration, store.IntegrationSecrets, error) {
	return t.st.RefreshTokens(ctx, integrationID, func(in *store.Integration, sec store.IntegrationSecrets) (store.IntegrationSecrets, time.Time, error) {
		g, err := fn(in, sec)
		if err != nil {
			return sec, time.Time{}, err
		}
		out := sec
		out.AccessToken, out.RefreshToken = g.AccessToken, g.RefreshToken
		return out, g.Expiry, nil
	})
}

// MarkNeedsReauth records that the integration's refresh token is dead:
// only its admin authorising again brings it back. tokenVersion names the
// tokens that were refused (Integration.TokenVersion as the refresh saw
// it): if newer ones were stored since (the admin installed again while
// the refresh failed), the mark is dropped and it reports false.
func (t *Tokens) MarkNeedsReauth(ctx context.Context, integrationID string, tokenVersion int64, reason string) (bool, error) {
	marked, err := t.st.MarkNeedsReauthAt(ctx, integrationID, tokenVersion, reason)
	if err != nil {
		return false, fmt.Errorf("crm: mark %s needs re-authorisation: %w", integrationID, err)
	}
	return marked, nil
}
