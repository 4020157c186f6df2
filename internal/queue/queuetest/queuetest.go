// Package queuetest holds jobs as a worker would, for tests that call a
// handler directly and check that it ends its job (queue.Done) in the
// commit of its work, and that a run which lost its lease writes nothing.
package queuetest

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// leaseFor is the lease Hold gives: longer than any test, since the test
// and not a reaper decides when the job changes hands.
const leaseFor = time.Hour

// Hold claims job id for owner as a worker's claim does (running, one
// more attempt) and returns the job as the worker hands it to its
// handler. Holding a job another owner holds is how a test steals it: the
// first owner's lease is lost, as after its expiry and a reclaim.
func Hold(t testing.TB, db *store.DB, id int64, owner string) *queue.Job {
	t.Helper()
	res := db.Gorm.Exec(`UPDATE jobs SET state = ?, locked_by = ?, attempts = attempts + 1, locked_until = ? WHERE id = ?`,
		queue.StateRunning, owner, store.Now().Add(leaseFor), id)
	if res.Error != nil {
		t.Fatalf("hold job %d: %v", id, res.Error)
	}
	if res.RowsAffected != 1 {
		t.Fatalf("hold job %d: no such job", id)
	}
	var row struct {
		ID          int64
		Kind        string
		WorkspaceID string
		QueueKey    string
		Payload     string
		Attempts    int
		MaxAttempts int
	}
	err := db.Gorm.Raw(`SELECT id, kind, workspace_id, queue_key, payload, attempts, max_attempts FROM jobs WHERE id = ?`, id).Scan(&row).Error
	if err != nil {
		t.Fatalf("read job %d: %v", id, err)
	}
	return &queue.Job{ID: row.ID, Kind: row.Kind, WorkspaceID: row.WorkspaceID, Key: row.QueueKey, Payload: []byte(row.Payload),
		State: queue.StateRunning, Attempts: row.Attempts, MaxAttempts: row.MaxAttempts, LockedBy: owner}
}

// Exists reports whether job id is still in the jobs table (a job that
// ended is deleted).
func Exists(t testing.TB, db *store.DB, id int64) bool {
	t.Helper()
	var n int64
	if err := db.Gorm.Raw(`SELECT COUNT(*) FROM jobs WHERE id = ?`, id).Scan(&n).Error; err != nil {
		t.Fatalf("job %d: %v", id, err)
	}
	return n == 1
}

// Only returns the id of the one job of kind, failing the test unless
// there is exactly one.
func Only(t testing.TB, db *store.DB, kind string) int64 {
	t.Helper()
	var ids []int64
	if err := db.Gorm.Raw(`SELECT id FROM jobs WHERE kind = ? ORDER BY id`, kind).Scan(&ids).Error; err != nil {
		t.Fatalf("jobs of %s: %v", kind, err)
	}
	if len(ids) != 1 {
		t.Fatalf("%d jobs of %s, want 1", len(ids), kind)
	}
	return ids[0]
}
