package store_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func newChannel(t *testing.T, st *store.Store) *store.Channel {
	t.Helper()
	ws, err := st.EnsureDefaultWorkspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ch := &store.Channel{WorkspaceID: ws.ID, Type: "whatsapp", Name: "wa", AccountID: "1"}
	if err := st.CreateChannel(context.Background(), ch, "tok"); err != nil {
		t.Fatal(err)
	}
	return ch
}

// Many deliveries from one new customer arrive at once: every transaction
// gets the same contact and none fails.
func TestUpsertContactConcurrently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
		st := store.New(db, box)
		ch := newChannel(t, st)
		const n = 16
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs[i] = st.Tx(context.Background(), func(tx *gorm.DB) error {
					c, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: "79161234567", Name: "Анна"}, nil)
					if err == nil {
						ids[i] = c.ID
					}
					return err
				})
			}(i)
		}
		wg.Wait()
		for i := range errs {
			if errs[i] != nil {
				t.Fatalf("tx %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("two contacts for one customer: %s, %s", ids[0], ids[i])
			}
		}
	})
}
