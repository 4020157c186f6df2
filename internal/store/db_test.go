package store_test

import (
	"context"
	"testing"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func TestMigrationsGiveSameTables(t *testing.T) {
	want := []string{"api_tokens", "channel_bindings", "channels", "contacts", "crm_events", "crm_links", "integrations", "jobs", "media", "messages", "oauth_states", "orphan_statuses", "unrouted_events", "workspaces"}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, table := range want {
			if !db.Gorm.Migrator().HasTable(table) {
				t.Errorf("table %s missing on %s", table, db.Dialect)
			}
		}
		// Applying again is a no-op, as on every restart.
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
	})
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	if _, err := store.Open(context.Background(), "mysql://x", ""); err == nil {
		t.Fatal("mysql url accepted")
	}
}

func TestAutovacuumOffAsTheServerSays(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		off, err := db.AutovacuumOff(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := false
		if db.Dialect == store.Postgres {
			var v string
			if err := db.SQL().QueryRow("SHOW autovacuum").Scan(&v); err != nil {
				t.Fatal(err)
			}
			want = v == "off"
		}
		if off != want {
			t.Fatalf("%s: AutovacuumOff = %v, want %v", db.Dialect, off, want)
		}
	})
}
