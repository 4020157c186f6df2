package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func testStore(t *testing.T, db *store.DB) *store.Store {
	box, _ := secret.NewBox(bytes.Repeat([]byte{2}, 32))
	return store.New(db, box)
}

func install(t *testing.T, st *store.Store, refresh string) *store.Integration {
	t.Helper()
	in, created, err := st.UpsertIntegration(context.Background(), store.InstallParams{Type: "bitrix24", ExternalID: "a1b2c3",
		Domain: "example.bitrix24.ru", ClientEndpoint: "https://example.bitrix24.ru/rest/",
		Secrets: store.IntegrationSecrets{ApplicationToken: "app-tok", AccessToken: "acc-1", RefreshToken: refresh}})
	if err != nil || in == nil {
		t.Fatalf("upsert: %v", err)
	}
	_ = created
	return in
}

func TestIntegrationInstallIsIdempotentAndSealed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		a := install(t, st, "ref-1")
		b := install(t, st, "ref-2")
		if a.ID != b.ID || a.WorkspaceID != b.WorkspaceID {
			t.Fatalf("reinstall made a new integration: %s/%s vs %s/%s", a.ID, a.WorkspaceID, b.ID, b.WorkspaceID)
		}
		ws, _ := st.GetWorkspace(context.Background(), store.All, a.WorkspaceID)
		if ws.Name != "example.bitrix24.ru" {
			t.Fatalf("marketplace install should make a workspace named after the portal, got %q", ws.Name)
		}
		// Its people's numbers are read like every other new workspace's.
		if !ws.PhoneTrunk8 || ws.PhoneRegion != "RU" {
			t.Fatalf("an installed portal's workspace reads numbers with trunk8=%v region=%q", ws.PhoneTrunk8, ws.PhoneRegion)
		}
		if bytes.Contains([]byte(b.RefreshToken+b.AccessToken+b.ApplicationToken), []byte("ref-2")) {
			t.Fatal("tokens stored in clear")
		}
		sec, err := st.Secrets(b)
		if err != nil || sec.RefreshToken != "ref-2" || sec.ApplicationToken != "app-tok" {
			t.Fatalf("secrets: %+v %v", sec, err)
		}
	})
}

// Concurrent callers that all find the access token expired: exactly one
// of them refreshes; the others see its result.
func TestRefreshTokensIsSerialised(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		in := install(t, st, "ref-1")
		var calls atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, sec, err := st.RefreshTokens(context.Background(), in.ID, func(cur *store.Integration, sec store.IntegrationSecrets) (store.IntegrationSecrets, time.Time, error) {
					if sec.AccessToken != "acc-1" {
						return sec, time.Time{}, nil // refreshed by someone else
					}
					calls.Add(1)
					time.Sleep(20 * time.Millisecond)
					sec.AccessToken, sec.RefreshToken = "acc-2", "ref-2"
					return sec, time.Now().Add(time.Hour), nil
				})
				if err == nil && sec.AccessToken != "acc-2" {
					err = errors.New("caller did not get the new token: " + sec.AccessToken)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() != 1 {
			t.Fatalf("%d refreshes, want exactly 1", calls.Load())
		}
	})
}

func TestOAuthStateWorksOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ws, _ := st.EnsureDefaultWorkspace(context.Background())
		s, err := st.NewOAuthState(context.Background(), ws.ID, "bitrix24", "x.bitrix24.ru", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ConsumeOAuthState(context.Background(), s, "amocrm"); err == nil {
			t.Fatal("state accepted for another provider")
		}
		got, err := st.ConsumeOAuthState(context.Background(), s, "bitrix24")
		if err != nil || got.WorkspaceID != ws.ID {
			t.Fatalf("consume: %v %v", got, err)
		}
		if _, err := st.ConsumeOAuthState(context.Background(), s, "bitrix24"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("replayed state accepted: %v", err)
		}
		old, _ := st.NewOAuthState(context.Background(), ws.ID, "bitrix24", "", -time.Second)
		if _, err := st.ConsumeOAuthState(context.Background(), old, "bitrix24"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired state accepted: %v", err)
		}
	})
}

// Two gateway instances (separate processes' worth of state: two pools,
// two mutex sets) share a PostgreSQL database; the row lock lets exactly
// one of them use the refresh token.
func TestRefreshTokensAcrossInstances(t *testing.T) {
	url := storetest.URL(t)
	box, _ := secret.NewBox(bytes.Repeat([]byte{2}, 32))
	var stores []*store.Store
	for i := 0; i < 2; i++ {
		db, err := store.Open(context.Background(), url, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		stores = append(stores, store.New(db, box))
	}
	in := install(t, stores[0], "ref-1")
	var calls atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(st *store.Store) {
			defer wg.Done()
			_, _, err := st.RefreshTokens(context.Background(), in.ID, func(cur *store.Integration, sec store.IntegrationSecrets) (store.IntegrationSecrets, time.Time, error) {
				if sec.AccessToken != "acc-1" {
					return sec, time.Time{}, nil
				}
				calls.Add(1)
				time.Sleep(30 * time.Millisecond)
				sec.AccessToken, sec.RefreshToken = "acc-2", "ref-2"
				return sec, time.Now().Add(time.Hour), nil
			})
			if err != nil {
				t.Error(err)
			}
		}(stores[i%2])
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d refreshes across two instances, want exactly 1", calls.Load())
	}
}

// PutLinks writes the links it is given in one statement and, like
// PutLink, keeps a local object's first link of a kind: a link already
// there is not overwritten, another integration's or kind's is untouched.
func TestPutLinksKeepsTheFirstLink(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		in := install(t, st, "ref")
		ctx := context.Background()
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			if err := store.PutLink(tx, in.ID, "chat", "c1", "old"); err != nil {
				return err
			}
			if err := store.PutLink(tx, in.ID, "other", "c2", "kept"); err != nil {
				return err
			}
			if err := store.PutLinks(tx, in.ID, "chat", nil); err != nil {
				return err
			}
			return store.PutLinks(tx, in.ID, "chat", map[string]string{"c1": "new", "c2": "20", "c3": "30"})
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[[2]string]string{{"chat", "c1"}: "old", {"chat", "c2"}: "20", {"chat", "c3"}: "30", {"other", "c2"}: "kept"}
		for k, remote := range want {
			got, err := store.LinkByLocal(db.Gorm, in.ID, k[0], k[1])
			if err != nil || got != remote {
				t.Fatalf("%s link of %s: %q %v, want %q", k[0], k[1], got, err, remote)
			}
		}
		var n int64
		if err := db.Gorm.Model(&store.CRMLink{}).Where("integration_id = ?", in.ID).Count(&n).Error; err != nil || n != 4 {
			t.Fatalf("%d links (%v), want 4", n, err)
		}
	})
}
