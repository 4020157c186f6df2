package bitrix24

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/queue/queuetest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// A deleted Open Line's event drops the line's bindings and ends its job
// in one commit: a run whose lease was taken drops nothing
// (ErrLeaseLost); the run holding the job drops them and leaves no job.
func TestLineDeletedEventEndsInTheCommitOfTheUnbinding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: Type, ExternalID: "member-1", Domain: "p1.example", WorkspaceID: ws.ID,
			Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ws.ID, IntegrationID: in.ID, ChannelID: ch.ID, Mode: ModeOpenLines, LineID: "107"}); err != nil {
			t.Fatal(err)
		}
		err = st.Tx(ctx, func(tx *gorm.DB) error {
			ev := &store.CRMEvent{IntegrationID: in.ID, Kind: "ONIMCONNECTORLINEDELETE", DedupKey: "line-107", Payload: `{"data":"107"}`}
			if _, err := store.InsertCRMEvent(tx, ev); err != nil {
				return err
			}
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobEvent, WorkspaceID: ws.ID, Payload: eventJob{EventID: ev.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		msg := messaging.New(st, channel.NewRegistry(), nil, nil, nil, log, messaging.Config{}, nil)
		s := New(Config{PublicURL: "https://gw.example"}, st, msg, routing.New(st, log),
			media.NewSigner(bytes.Repeat([]byte{6}, 32), "https://gw.example", time.Hour), http.DefaultClient, log)
		bound := func() int {
			t.Helper()
			bs, err := st.ListBindings(ctx, in.ID)
			if err != nil {
				t.Fatal(err)
			}
			return len(bs)
		}

		id := queuetest.Only(t, db, JobEvent)
		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		if err := s.handleEvent(ctx, late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if n := bound(); n != 1 {
			t.Fatalf("a run without the lease committed: %d bindings left, want 1", n)
		}
		if err := s.handleEvent(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if n := bound(); n != 0 {
			t.Fatalf("%d bindings of the deleted line left", n)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the event's job outlived the commit of the unbinding")
		}
	})
}
