package queue_test

import (
	"context"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// TestBusyCountsAFollowUpCommittedWhileItWaits: a running job ends in a
// commit that also queues its follow-up, due at once (as the mirror window
// queues its send), while Busy waits to read the table (on SQLite for the
// one connection, here held by that commit's transaction; on PostgreSQL
// for a lock the transaction holds). Busy must count either the job still
// running or its follow-up due: never none, or a test waiting for an idle
// queue goes on while work is ready.
func TestBusyCountsAFollowUpCommittedWhileItWaits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q := newQueue(t, db, queue.Options{})
		q.Handle("window", func(context.Context, *queue.Job) error { return nil })
		enqueue(t, db, queue.NewJob{Kind: "window", WorkspaceID: "w"})
		jobs, err := q.Claim(ctx, 1)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim: %v %v", jobs, err)
		}
		running := jobs[0]

		type answer struct {
			n   int64
			err error
		}
		busy := make(chan answer, 1)
		waits := db.SQL().Stats().WaitCount
		err = db.Gorm.Transaction(func(tx *gorm.DB) error {
			if db.Dialect == store.Postgres {
				if err := tx.Exec(`LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE`).Error; err != nil {
					return err
				}
			}
			go func() {
				n, err := q.Busy(ctx)
				busy <- answer{n, err}
			}()
			waitFor(t, "Busy waiting to read the jobs", func() bool {
				if db.Dialect != store.Postgres {
					return db.SQL().Stats().WaitCount > waits
				}
				var blocked int64
				err := db.Gorm.Raw(`SELECT COUNT(*) FROM pg_locks WHERE relation = to_regclass('jobs') AND NOT granted`).Scan(&blocked).Error
				if err != nil {
					t.Error(err)
					return true
				}
				return blocked > 0
			})
			// The follow-up's run_at is stamped now, after Busy started.
			if _, err := queue.Enqueue(tx, queue.NewJob{Kind: "window-send", WorkspaceID: "w"}); err != nil {
				return err
			}
			return queue.Done(tx, running)
		})
		if err != nil {
			t.Fatal(err)
		}
		got := recv(t, busy)
		if got.err != nil {
			t.Fatal(got.err)
		}
		// One of the two, by the snapshot Busy read: the job running, or
		// its follow-up ready.
		if got.n != 1 {
			t.Fatalf("Busy counted %d jobs while a job ended into its follow-up, want 1", got.n)
		}
		if n, err := q.Busy(ctx); err != nil || n != 1 {
			t.Fatalf("Busy after the follow-up was queued: %d %v, want 1", n, err)
		}
	})
}
