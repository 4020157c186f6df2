package bitrix24

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/internal/store"
)

// storeTokens keeps portals' tokens in the database, sealed, with
// refreshes serialised by store.RefreshTokens.
type storeTokens struct{ st *store.Store }

func credentialsOf(in *store.Integration, sec store.IntegrationSecrets) Credentials {
	c := Credentials{IntegrationID: in.ID, MemberID: in.ExternalID, ClientEndpoint: in.ClientEndpoint,
		AccessToken: sec.AccessToken, RefreshToken: sec.RefreshToken, Version: in.TokenVersion}
	if in.TokenExpiresAt != nil {
		c.Expiry = *in.TokenExpiresAt
	}
	return c
}

func (t storeTokens) Credentials(ctx context.Context, integrationID string) (Credentials, error) {
	in, err := t.st.GetIntegration(ctx, store.All, integrationID)
	if err != nil {
		return Credentials{}, err
	}
	sec, err := t.st.Secrets(in)
	if err != nil {
		return Credentials{}, err
	}
	return credentialsOf(in, sec), nil
}

func (t storeTokens) RefreshLocked(ctx context.Context, integrationID string, fn func(cur Credentials) (Credentials, error)) (Credentials, error) {
	in, sec, err := t.st.RefreshTokens(ctx, integrationID, func(in *store.Integration, sec store.IntegrationSecrets) (store.IntegrationSecrets, time.Time, error) {
		next, err := fn(credentialsOf(in, sec))
		if err != nil {
			return sec, time.Time{}, err
		}
		out := sec
		out.AccessToken, out.RefreshToken = next.AccessToken, next.RefreshToken
		return out, next.Expiry, nil
	})
	if err != nil {
		return Credentials{}, err
	}
	return credentialsOf(in, sec), nil
}

func (t storeTokens) MarkNeedsReauth(ctx context.Context, integrationID, reason string) error {
	return t.st.SetIntegrationState(ctx, integrationID, store.IntegrationNeedsReauth, reason)
}
