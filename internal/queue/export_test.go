package queue

import (
	"context"
	"maps"
	"slices"
	"time"
)

// Claim claims up to n ready jobs as the poller would, without starting
// the queue, so tests and benchmarks can look at single claims.
func (q *Queue) Claim(ctx context.Context, n int) ([]*Job, error) {
	q.mu.Lock()
	if q.kinds == nil {
		q.kinds = slices.Sorted(maps.Keys(q.handlers))
	}
	q.mu.Unlock()
	return q.claim(ctx, n)
}

// SetWindow sets how many pending jobs of a workspace the walk reads
// before it leaves the claim to the scan; 0 makes every claim a scan.
func (q *Queue) SetWindow(n int) { q.window = n }

// SetWalkOnly makes a claim whose walk found nothing return nothing,
// instead of scanning: the scan ignores parking, so it would make up for a
// job the walk cannot see.
func (q *Queue) SetWalkOnly() { q.walkOnly = true }

// Complete deletes a job claimed by Claim, as a handler's success would.
func (q *Queue) Complete(ctx context.Context, j *Job) (bool, error) { return q.complete(ctx, j) }

// Retry puts a job claimed by Claim back, due at the given time, as a
// handler's failure would.
func (q *Queue) Retry(ctx context.Context, j *Job, at time.Time) (bool, error) {
	return q.retry(ctx, j, at, "retry")
}

// RunClaimed runs a job claimed by Claim as a worker would: its handler,
// then the outcome recorded.
func (q *Queue) RunClaimed(ctx context.Context, j *Job) {
	q.inflight.Add(1)
	q.slots <- struct{}{}
	q.run(ctx, j)
}

// Snooze puts a job claimed by Claim off until at, as a handler's Snooze
// would.
func (q *Queue) SnoozeClaimed(ctx context.Context, j *Job, at time.Time) (bool, error) {
	return q.snooze(ctx, j, at, "snoozed")
}

// Bury dead-letters a job claimed by Claim, as a permanent failure would.
func (q *Queue) Bury(ctx context.Context, j *Job) (bool, error) { return q.bury(ctx, j, "dead") }

// Reap hands out again the jobs whose lease expired, as the reaper would.
func (q *Queue) Reap(ctx context.Context) (int, error) { return q.reap(ctx) }

// Settle cuts short the parks that outlived their reason, as the reaper
// does every few reaps.
func (q *Queue) Settle(ctx context.Context) (int64, error) { return q.settle(ctx) }
