package crm

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func TestInbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		box, err := secret.NewBox(bytes.Repeat([]byte{3}, 32))
		if err != nil {
			t.Fatal(err)
		}
		st := store.New(db, box)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: "crmx", ExternalID: "acc-1", Domain: "acc.example",
			Secrets: store.IntegrationSecrets{RefreshToken: "r", ApplicationToken: "app-tok"}})
		if err != nil {
			t.Fatal(err)
		}
		woken := 0
		b := NewInbox(st, func() { woken++ })

		for name, c := range map[string]struct {
			typ, id, token string
			want           error
		}{
			"no id":       {"crmx", "", "app-tok", ErrUnknownCaller},
			"unknown id":  {"crmx", "acc-2", "app-tok", ErrUnknownCaller},
			"other type":  {"crmy", "acc-1", "app-tok", ErrUnknownCaller},
			"wrong token": {"crmx", "acc-1", "app-to", ErrBadCallerToken},
			"no token":    {"crmx", "acc-1", "", ErrBadCallerToken},
		} {
			if _, err := b.Caller(ctx, c.typ, c.id, c.token); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", name, err, c.want)
			}
		}
		got, err := b.Caller(ctx, "crmx", "acc-1", "app-tok")
		if err != nil || got.ID != in.ID {
			t.Fatalf("the integration's own caller: %v %v", got, err)
		}

		// The same event twice: one event, one job, the queue woken each time.
		for range 2 {
			ev := &store.CRMEvent{IntegrationID: in.ID, Kind: "X", DedupKey: "X:1", Payload: "{}"}
			err := b.Keep(ctx, ev, func(ev *store.CRMEvent) queue.NewJob {
				return queue.NewJob{Kind: "crmx.event", WorkspaceID: in.WorkspaceID, Payload: map[string]string{"event_id": ev.ID}}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		var events, jobs int64
		if err := db.Gorm.Table("crm_events").Count(&events).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Gorm.Table("jobs").Where("kind = ?", "crmx.event").Count(&jobs).Error; err != nil {
			t.Fatal(err)
		}
		if events != 1 || jobs != 1 || woken != 2 {
			t.Errorf("%d events, %d jobs, woken %d times; want 1, 1, 2", events, jobs, woken)
		}
	})
}
