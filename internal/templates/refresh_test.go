package templates

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/queue/queuetest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// oneTemplate is a business account with one template.
type oneTemplate struct{}

func (oneTemplate) ListTemplates(context.Context, channel.Credentials, string) ([]channel.TemplateInfo, error) {
	return []channel.TemplateInfo{{Name: "hello", Language: "en", Category: "UTILITY", Status: "APPROVED", Components: []byte(`[]`)}}, nil
}

// The daily refresh stores the set, queues the next day's and ends, all in
// one commit: a run whose lease was taken stores nothing and queues
// nothing; the holder's run does it once and leaves only the next day's
// job.
func TestDailyRefreshEndsInTheCommitOfTheSet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st, ws := storetest.Workspace(t, db)
		ch := &store.Channel{WorkspaceID: ws.ID, Type: string(channel.WhatsApp), Name: "wa", AccountID: "acc-1", WabaID: "waba-1"}
		if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
			t.Fatal(err)
		}
		var id int64
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			var err error
			id, err = queue.Enqueue(tx, queue.NewJob{Kind: JobRefresh, WorkspaceID: ws.ID, Key: jobKey(ch.ID), Payload: refreshPayload{ChannelID: ch.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		reg := channel.NewRegistry()
		reg.Register(&channel.Provider{Type: channel.WhatsApp, Templates: oneTemplate{}})
		s := New(st, reg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		look := func() (stored int, next int64) {
			t.Helper()
			rows, err := st.Templates(ctx, ch.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Gorm.Raw(`SELECT COUNT(*) FROM jobs WHERE kind = ? AND id <> ?`, JobRefresh, id).Scan(&next).Error; err != nil {
				t.Fatal(err)
			}
			return len(rows), next
		}

		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder")
		if err := s.handleRefresh(ctx, late); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease: %v, want ErrLeaseLost", err)
		}
		if stored, next := look(); stored != 0 || next != 0 {
			t.Fatalf("a run without the lease committed: %d templates, %d next jobs", stored, next)
		}
		if err := s.handleRefresh(ctx, holder); err != nil {
			t.Fatal(err)
		}
		if stored, next := look(); stored != 1 || next != 1 {
			t.Fatalf("the holder's run: %d templates, %d next jobs, want 1 and 1", stored, next)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the refresh job outlived the commit of the set")
		}
	})
}
