package bitrix24

import (
	"context"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/store"
)

// storeTokens is the client's TokenStore on crm's token store: tokens
// sealed in the database, refreshes serialised per portal. It only turns
// an integration into Bitrix24's Credentials.
type storeTokens struct{ t *crm.Tokens }

func credentialsOf(in *store.Integration, sec store.IntegrationSecrets) Credentials {
	c := Credentials{IntegrationID: in.ID, MemberID: in.ExternalID, ClientEndpoint: in.ClientEndpoint,
		AccessToken: sec.AccessToken, RefreshToken: sec.RefreshToken, Version: in.TokenVersion}
	if in.TokenExpiresAt != nil {
		c.Expiry = *in.TokenExpiresAt
	}
	return c
}

func (t storeTokens) Credentials(ctx context.Context, integrationID string) (Credentials, error) {
	in, sec, err := t.t.Load(ctx, integrationID)
	if err != nil {
		return Credentials{}, err
	}
	return credentialsOf(in, sec), nil
}

func (t storeTokens) RefreshLocked(ctx context.Context, integrationID string, fn func(cur Credentials) (Credentials, error)) (Credentials, error) {
	in, sec, err := t.t.Refresh(ctx, integrationID, func(in *store.Integration, sec store.IntegrationSecrets) (crm.Grant, error) {
		next, err := fn(credentialsOf(in, sec))
		if err != nil {
			return crm.Grant{}, err
		}
		return crm.Grant{AccessToken: next.AccessToken, RefreshToken: next.RefreshToken, Expiry: next.Expiry}, nil
	})
	if err != nil {
		return Credentials{}, err
	}
	return credentialsOf(in, sec), nil
}

func (t storeTokens) MarkNeedsReauth(ctx context.Context, integrationID string, version int64, reason string) (bool, error) {
	return t.t.MarkNeedsReauth(ctx, integrationID, version, reason)
}
