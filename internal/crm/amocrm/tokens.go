package amocrm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// RefreshBefore is how long before its expiry an access token is
// refreshed: amoCRM's live 24 hours, and a refresh an hour early keeps a
// call from being refused midway (contract §1.4).
const RefreshBefore = time.Hour

// storeTokens is the client's TokenSource on crm.Tokens: the pair sealed
// in the database, one refresh per account at a time across goroutines
// (mutex) and gateway instances (PostgreSQL's row lock), the rotated pair
// stored before the new access token is handed out.
type storeTokens struct {
	t      *crm.Tokens
	client *Client
	log    *slog.Logger
}

var _ TokenSource = (*storeTokens)(nil)

// AccessToken returns the stored access token, refreshed first when it
// is about to expire. An integration that is not live has no usable token:
// its work is parked by the caller's classification (ErrNeedsReauth).
func (t *storeTokens) AccessToken(ctx context.Context, integrationID string) (string, error) {
	in, sec, err := t.t.Load(ctx, integrationID)
	if err != nil {
		return "", err
	}
	if !tokensUsable(in) {
		return "", fmt.Errorf("%w: the integration is %s", ErrNeedsReauth, in.State)
	}
	if sec.AccessToken == "" {
		return "", fmt.Errorf("%w: no access token stored", ErrNeedsReauth)
	}
	if sec.RefreshToken != "" && in.TokenExpiresAt != nil && time.Until(*in.TokenExpiresAt) < RefreshBefore {
		return t.Refresh(ctx, integrationID, sec.AccessToken)
	}
	return sec.AccessToken, nil
}

// Refresh replaces failed by a newer token: the one stored meanwhile by
// another caller, or a refreshed one. A refused grant (the refresh token
// spent, revoked or expired; a long-lived token refused) marks the
// integration needs_reauth, so its work is parked until the admin installs
// again.
func (t *storeTokens) Refresh(ctx context.Context, integrationID, failed string) (string, error) {
	// Detached: once amoCRM rotated the pair it must be stored, even if
	// the caller gave up meanwhile (the old refresh token is dead).
	ctx = context.WithoutCancel(ctx)
	refused := ""
	var refusedVersion int64 // the tokens amoCRM refused
	_, sec, err := t.t.Refresh(ctx, integrationID, func(in *store.Integration, sec store.IntegrationSecrets) (crm.Grant, error) {
		refusedVersion = in.TokenVersion
		if !tokensUsable(in) {
			return crm.Grant{}, fmt.Errorf("%w: the integration is %s", ErrNeedsReauth, in.State)
		}
		if sec.AccessToken != "" && sec.AccessToken != failed {
			// Someone refreshed while we waited for the lock: the same
			// grant writes nothing.
			return crm.Grant{AccessToken: sec.AccessToken, RefreshToken: sec.RefreshToken}, nil
		}
		if sec.RefreshToken == "" {
			refused = "the long-lived token was refused; give a new one or install the widget again"
			return crm.Grant{}, fmt.Errorf("%w: long-lived token refused", ErrNeedsReauth)
		}
		tok, err := t.client.Refresh(ctx, in.Domain, sec.RefreshToken)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && NeedsReauth(err) {
				refused = "amoCRM refused the refresh token (" + e.Hint + "); an account admin must install the widget again"
			}
			return crm.Grant{}, err
		}
		if tok.RefreshToken == "" {
			// A grant without its successor would leave nothing to
			// refresh with tomorrow; amoCRM always sends one.
			return crm.Grant{}, errors.New("amocrm: refresh answer has no refresh token")
		}
		return crm.Grant{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}, nil
	})
	if err != nil {
		if refused != "" {
			t.markNeedsReauth(ctx, integrationID, refusedVersion, refused)
		}
		return "", err
	}
	return sec.AccessToken, nil
}

// currentTokens asks markNeedsReauth to mark whatever tokens are stored
// now: a caller that was refused without knowing which tokens it used.
const currentTokens int64 = -1

// markNeedsReauth records that only the admin can bring the account back,
// unless the tokens at version (the refused ones) were replaced meanwhile;
// an uninstalled integration stays uninstalled.
func (t *storeTokens) markNeedsReauth(ctx context.Context, integrationID string, version int64, reason string) {
	in, _, err := t.t.Load(ctx, integrationID)
	if err != nil {
		t.log.Error("amocrm: mark needs re-authorisation", "integration_id", integrationID, "err", err)
		return
	}
	if in.State == store.IntegrationUninstalled {
		return
	}
	if version == currentTokens {
		version = in.TokenVersion
	}
	marked, err := t.t.MarkNeedsReauth(ctx, integrationID, version, reason)
	switch {
	case err != nil:
		t.log.Error("amocrm: mark needs re-authorisation", "integration_id", integrationID, "err", err)
	case marked:
		t.log.Warn("amocrm account needs re-authorisation", "integration_id", integrationID, "reason", reason)
	default:
		t.log.Info("amocrm: refused tokens were replaced meanwhile (installed again); not marked", "integration_id", integrationID)
	}
}

// tokensUsable says whether an integration's tokens may be used: a live
// one's, and an unpaid one's (its tokens are good; the probe asks with
// them whether the account was paid, and keeps them fresh meanwhile).
func tokensUsable(in *store.Integration) bool {
	return routing.Live(in) || in.State == store.IntegrationUnpaid
}

// fixedToken is the TokenSource of an install: the token just received,
// used to read the account before anything is stored.
type fixedToken string

func (f fixedToken) AccessToken(context.Context, string) (string, error) { return string(f), nil }

func (f fixedToken) Refresh(context.Context, string, string) (string, error) {
	return "", fmt.Errorf("%w: the token just issued was refused", ErrNeedsReauth)
}
