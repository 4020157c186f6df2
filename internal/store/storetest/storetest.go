// Package storetest gives tests a migrated database on every engine: an
// in-memory SQLite always, and PostgreSQL when TEST_DATABASE_URL is set,
// each test in a schema of its own that is dropped afterwards.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
)

// EnvURL names the variable that points tests at PostgreSQL.
const EnvURL = "TEST_DATABASE_URL"

// Each runs f as a subtest once per available engine.
func Each(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	if os.Getenv(EnvURL) == "" {
		return
	}
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}

// SQLite opens a migrated in-memory database.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// Postgres opens a migrated database in a fresh schema, or skips the test
// when TEST_DATABASE_URL is unset.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skip(EnvURL + " is not set")
	}
	ctx := context.Background()
	admin, err := store.Open(ctx, base, "")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := "t_" + randomHex(8)
	if err := admin.Gorm.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := store.Open(ctx, base, "")
		if err != nil {
			return
		}
		defer a.Close()
		a.Gorm.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	db, err := store.Open(ctx, withSearchPath(t, base, schema), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// URL returns a PostgreSQL URL for a fresh migrated schema, for tests that
// start a whole gateway (several instances may share it).
func URL(t testing.TB) string {
	t.Helper()
	db := Postgres(t)
	var schema string
	if err := db.Gorm.Raw("SELECT current_schema()").Scan(&schema).Error; err != nil {
		t.Fatal(err)
	}
	return withSearchPath(t, os.Getenv(EnvURL), schema)
}

func withSearchPath(t testing.TB, base, schema string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("bad %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Workspace gives a test a store over db, with tokens sealed by a fixed
// test key, and its default workspace: the start most store-backed tests
// share.
func Workspace(t testing.TB, db *store.DB) (*store.Store, *store.Workspace) {
	t.Helper()
	box, err := secret.NewBox(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, box)
	ws, err := st.EnsureDefaultWorkspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st, ws
}
