package queue_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/queue/queuetest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// Finish commits a handler's writes and the job's end together: a run
// whose lease was taken writes nothing and gets ErrLeaseLost; the run that
// holds the job then does the work once and the job is gone. The writes
// go through the store's InTx view, including a method's own transaction
// (a savepoint in the handler's).
func TestFinishCommitsTheWorkWithTheJobsEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := store.New(db, nil)
		id := enqueue(t, db, queue.NewJob{Kind: "work"})[0]
		work := func(name string) func(st *store.Store) error {
			return func(st *store.Store) error {
				if _, err := st.CreateWorkspace(ctx, name, "UTC"); err != nil {
					return err
				}
				return st.Tx(ctx, func(tx *gorm.DB) error {
					_, err := queue.Enqueue(tx, queue.NewJob{Kind: "follow-up:" + name})
					return err
				})
			}
		}
		workspaces := func(name string) int {
			t.Helper()
			ws, err := st.ListWorkspaces(ctx, store.All)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, w := range ws {
				if w.Name == name {
					n++
				}
			}
			return n
		}
		followUps := func(name string) int64 {
			t.Helper()
			var n int64
			if err := db.Gorm.Raw(`SELECT COUNT(*) FROM jobs WHERE kind = ?`, "follow-up:"+name).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}

		late := queuetest.Hold(t, db, id, "late")
		holder := queuetest.Hold(t, db, id, "holder") // the late run's lease expired and the job was claimed again
		if err := queue.Finish(ctx, st, late, work("late")); !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("a run without the lease finished: %v", err)
		}
		if n, m := workspaces("late"), followUps("late"); n != 0 || m != 0 {
			t.Fatalf("a run without the lease committed its work: %d workspaces, %d follow-ups", n, m)
		}
		if !queuetest.Exists(t, db, id) {
			t.Fatal("a run without the lease ended the job")
		}
		if err := queue.Finish(ctx, st, holder, work("holder")); err != nil {
			t.Fatal(err)
		}
		if n, m := workspaces("holder"), followUps("holder"); n != 1 || m != 1 {
			t.Fatalf("the holder's work: %d workspaces, %d follow-ups, want 1 and 1", n, m)
		}
		if queuetest.Exists(t, db, id) {
			t.Fatal("the job outlived the commit of its work")
		}
	})
}
