package crm

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func TestTokensRefresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		box, err := secret.NewBox(bytes.Repeat([]byte{4}, 32))
		if err != nil {
			t.Fatal(err)
		}
		st := store.New(db, box)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: "crmx", ExternalID: "acc-1", Domain: "acc.example",
			Secrets: store.IntegrationSecrets{AccessToken: "a1", RefreshToken: "r1", ApplicationToken: "app"}})
		if err != nil {
			t.Fatal(err)
		}
		tk := NewTokens(st)
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		_, sec, err := tk.Refresh(ctx, in.ID, func(_ *store.Integration, cur store.IntegrationSecrets) (Grant, error) {
			if cur.RefreshToken != "r1" {
				t.Errorf("refresh saw %q", cur.RefreshToken)
			}
			return Grant{AccessToken: "a2", RefreshToken: "r2", Expiry: exp}, nil
		})
		if err != nil || sec.AccessToken != "a2" || sec.RefreshToken != "r2" || sec.ApplicationToken != "app" {
			t.Fatalf("after refresh: %+v %v", sec, err)
		}
		got, sec, err := tk.Load(ctx, in.ID)
		if err != nil || sec.RefreshToken != "r2" || got.TokenExpiresAt == nil || !got.TokenExpiresAt.Equal(exp) {
			t.Fatalf("loaded: %+v %+v %v", got, sec, err)
		}
		// A failed refresh keeps what was stored.
		boom := errors.New("oauth server down")
		if _, _, err := tk.Refresh(ctx, in.ID, func(*store.Integration, store.IntegrationSecrets) (Grant, error) { return Grant{}, boom }); !errors.Is(err, boom) {
			t.Fatalf("failed refresh: %v", err)
		}
		if _, sec, _ := tk.Load(ctx, in.ID); sec.RefreshToken != "r2" {
			t.Fatalf("a failed refresh changed the tokens: %+v", sec)
		}
		// The admin installs again while a refresh with the old tokens
		// is being refused: the late mark must not undo the install.
		refused, _, err := tk.Load(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: "crmx", ExternalID: "acc-1", Domain: "acc.example",
			Secrets: store.IntegrationSecrets{AccessToken: "a3", RefreshToken: "r3", ApplicationToken: "app"}}); err != nil {
			t.Fatal(err)
		}
		if marked, err := tk.MarkNeedsReauth(ctx, in.ID, refused.TokenVersion, "refresh token revoked"); err != nil || marked {
			t.Fatalf("a mark of replaced tokens: marked %v, %v", marked, err)
		}
		if got, _, _ := tk.Load(ctx, in.ID); got.State == store.IntegrationNeedsReauth {
			t.Fatalf("the install was undone by a mark of the tokens it replaced: %q", got.StateReason)
		}
		current, _, err := tk.Load(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if marked, err := tk.MarkNeedsReauth(ctx, in.ID, current.TokenVersion, "refresh token revoked"); err != nil || !marked {
			t.Fatalf("a mark of the stored tokens: marked %v, %v", marked, err)
		}
		if got, _, _ := tk.Load(ctx, in.ID); got.State != store.IntegrationNeedsReauth || got.StateReason != "refresh token revoked" {
			t.Fatalf("state %q %q", got.State, got.StateReason)
		}
		if _, _, err := tk.Load(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown integration: %v", err)
		}
	})
}
