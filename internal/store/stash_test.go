package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// TestStash: a stashed secret is kept sealed, read back, replaced, gone
// once dropped or expired, and not found under another provider.
func TestStash(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		if err := st.StashSecret(ctx, "p", "k", "tokens-1", time.Hour); err != nil {
			t.Fatal(err)
		}
		var raw string
		if err := db.Gorm.Table("oauth_states").Select("domain").Where("provider = ?", "p").Scan(&raw).Error; err != nil || raw == "" || strings.Contains(raw, "tokens-1") {
			t.Fatalf("stored %q (%v): not sealed", raw, err)
		}
		if v, err := st.StashedSecret(ctx, "p", "k"); err != nil || v != "tokens-1" {
			t.Fatalf("read %q %v", v, err)
		}
		if err := st.StashSecret(ctx, "p", "k", "tokens-2", time.Hour); err != nil {
			t.Fatal(err)
		}
		if v, err := st.StashedSecret(ctx, "p", "k"); err != nil || v != "tokens-2" {
			t.Fatalf("replaced: %q %v", v, err)
		}
		if _, err := st.StashedSecret(ctx, "other", "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another provider: %v", err)
		}
		if err := st.DropStashed(ctx, "p", "k"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.StashedSecret(ctx, "p", "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after drop: %v", err)
		}
		if err := st.StashSecret(ctx, "p", "old", "x", -time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := st.StashedSecret(ctx, "p", "old"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired: %v", err)
		}
	})
}
