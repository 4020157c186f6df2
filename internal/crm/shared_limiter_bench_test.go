package crm

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// BenchmarkLimiterWait is the cost of one Wait that does not have to
// sleep (the rate is far above what the benchmark reaches): the database
// round trip of the shared limiter on each engine, against the in-process
// limiter. The parallel runs have 4 goroutines per CPU (queue workers of
// a few instances): "parallel-one-key" all on one integration's row (its
// lock is the queue), "parallel-own-keys" one integration each.
// PostgreSQL needs TEST_DATABASE_URL.
//
//	go test -run '^$' -bench LimiterWait -benchtime 3s ./internal/crm
func BenchmarkLimiterWait(b *testing.B) {
	o := LimiterOptions{Rate: 1e6, Burst: 1 << 30}
	engines := []struct {
		name string
		new  func(b *testing.B) Waiter
	}{
		{"memory", func(*testing.B) Waiter { return NewLimiter(o) }},
		{"sqlite", func(b *testing.B) Waiter { return benchShared(b, storetest.SQLite(b), o) }},
		{"postgres", func(b *testing.B) Waiter { return benchShared(b, storetest.Postgres(b), o) }},
	}
	// The floor: one round trip to PostgreSQL that does nothing.
	b.Run("postgres-ping", func(b *testing.B) {
		db := storetest.Postgres(b)
		for b.Loop() {
			if err := db.Ping(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			// One database per engine: b.Run calls its function again
			// for each b.N it tries.
			l := e.new(b)
			for _, mode := range []string{"serial", "parallel-one-key", "parallel-own-keys"} {
				b.Run(mode, func(b *testing.B) { benchWait(b, l, mode) })
			}
		})
	}
}

func benchWait(b *testing.B, l Waiter, mode string) {
	ctx := context.Background()
	if mode == "serial" {
		for b.Loop() {
			if err := l.Wait(ctx, "a"); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	var n atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		key := "a"
		if mode == "parallel-own-keys" {
			key = fmt.Sprint("k", n.Add(1))
		}
		for pb.Next() {
			if err := l.Wait(ctx, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchShared is a shared limiter that fails the benchmark if it ever has
// to sleep: the figure is the cost of taking a slot, not of waiting.
func benchShared(b *testing.B, db *store.DB, o LimiterOptions) Waiter {
	o.Sleep = func(context.Context, time.Duration) error {
		b.Error("the benchmark's limiter slept: raise its rate")
		return nil
	}
	return NewSharedLimiter(store.New(db, nil), o)
}
