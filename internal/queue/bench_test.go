package queue_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// BenchmarkEnqueueAndProcess measures the outbox path end to end: each job
// enqueued in a transaction of its own, Notify, claimed, run by a no-op
// handler and deleted, with 4 workers.
func BenchmarkEnqueueAndProcess(b *testing.B) {
	engines := []struct {
		name string
		open func(testing.TB) *store.DB
	}{
		{"sqlite", storetest.SQLite},
		{"postgres", storetest.Postgres},
	}
	for _, e := range engines {
		for _, keys := range []int{0, 16} {
			name := e.name + "/independent"
			if keys > 0 {
				name = fmt.Sprintf("%s/%d-keys", e.name, keys)
			}
			b.Run(name, func(b *testing.B) {
				if e.name == "postgres" && os.Getenv(storetest.EnvURL) == "" {
					b.Skip(storetest.EnvURL + " is not set")
				}
				benchEnqueueAndProcess(b, e.open(b), keys)
			})
		}
	}
}

func benchEnqueueAndProcess(b *testing.B, db *store.DB, keys int) {
	q := newQueue(b, db, queue.Options{Workers: 4, PollInterval: 250 * time.Millisecond})
	var n atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	q.Handle("bench", func(ctx context.Context, j *queue.Job) error {
		if n.Add(1) == target {
			close(done)
		}
		return nil
	})
	start(b, q)

	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		key := ""
		if keys > 0 {
			key = fmt.Sprintf("send:ch:%d", i%keys)
		}
		err := db.Gorm.Transaction(func(tx *gorm.DB) error {
			_, err := queue.Enqueue(tx, queue.NewJob{
				Kind: "bench", WorkspaceID: fmt.Sprintf("ws%d", i%8), Key: key, Payload: map[string]int{"i": i},
			})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		q.Notify()
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("processed %d of %d jobs", n.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "jobs/s")
}
