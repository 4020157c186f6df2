// Package queue is a small job queue kept in the gateway's own database: a
// job is enqueued with the caller's GORM transaction, so it commits or rolls
// back together with the business row that caused it (a transactional
// outbox), and is then run by the workers of any gateway instance.
//
// Jobs sharing a Key run strictly one at a time in enqueue order, even
// across retries, so messages to one customer go out in the order they were
// written. Among the jobs that are ready, workspaces take turns, and within
// a workspace its channels (lanes) take turns, so neither one busy tenant
// nor one busy channel of a tenant can starve the others.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/store"
)

// Job states as stored in jobs.state. A job that succeeds is deleted, so
// there is no "done" state.
const (
	StatePending = "pending"
	StateRunning = "running"
	StateDead    = "dead"
)

// DefaultMaxAttempts is used when NewJob.MaxAttempts is zero.
const DefaultMaxAttempts = 12

// maxErrorLen bounds last_error: it is for an operator to read, not a log.
const maxErrorLen = 2000

// NewJob describes a job to enqueue.
type NewJob struct {
	Kind        string
	WorkspaceID string
	// Key orders and serialises jobs: of all jobs with the same non-empty
	// Key only the oldest runs, and only when none of them is running, e.g.
	// "send:<channel_id>:<contact_id>". An empty Key makes the job
	// independent of every other.
	Key string
	// Lane is the channel the job serves (its id), empty for a job that
	// serves none. Within a workspace the lanes take turns, so one
	// channel's backlog does not hold up another channel's jobs.
	Lane string
	// Payload is stored JSON-encoded; Job.Decode reads it back.
	Payload any
	// RunAt delays the job; zero means now.
	RunAt time.Time
	// MaxAttempts bounds how often the handler is called before the job is
	// dead-lettered; zero means DefaultMaxAttempts.
	MaxAttempts int
}

// Job is one row of the jobs table.
type Job struct {
	ID          int64
	Kind        string
	WorkspaceID string
	Key         string
	Lane        string
	Payload     json.RawMessage
	State       string
	// Attempts counts the handler calls so far, including the current one
	// while the job is running; calls that ended in Snooze are not counted.
	Attempts    int
	MaxAttempts int
	RunAt       time.Time
	LockedBy    string
	LockedUntil time.Time // zero unless running
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time

	// done is set by Done: the job was deleted in the handler's own
	// transaction, so the worker has nothing left to record on success.
	done bool
}

// Decode unmarshals the job's payload into v.
func (j *Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("queue: decode payload of job %d (%s): %w", j.ID, j.Kind, err)
	}
	return nil
}

// Enqueue inserts a job using tx and returns its id. Pass the transaction
// that writes the business row so both commit or neither does, then call
// Queue.Notify after the commit so a local worker picks the job up at once.
func Enqueue(tx *gorm.DB, j NewJob) (int64, error) {
	if j.Kind == "" {
		return 0, errors.New("queue: enqueue: empty kind")
	}
	if j.MaxAttempts < 0 {
		return 0, fmt.Errorf("queue: enqueue %s: negative max attempts %d", j.Kind, j.MaxAttempts)
	}
	maxAttempts := j.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = DefaultMaxAttempts
	}
	payload, err := json.Marshal(j.Payload)
	if err != nil {
		return 0, fmt.Errorf("queue: enqueue %s: encode payload: %w", j.Kind, err)
	}
	now := store.Now()
	runAt := now
	if !j.RunAt.IsZero() {
		// Same normalisation as store.Now, so SQLite's text times compare
		// correctly with the ones the workers pass.
		runAt = j.RunAt.UTC().Truncate(time.Microsecond)
	}
	var id int64
	err = tx.Raw(`INSERT INTO jobs (kind, workspace_id, queue_key, lane, payload, state, attempts,
			max_attempts, run_at, locked_by, last_error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, '', '', ?, ?)
		RETURNING id`,
		j.Kind, j.WorkspaceID, j.Key, j.Lane, string(payload), StatePending, maxAttempts, runAt, now, now,
	).Scan(&id).Error
	if err != nil {
		return 0, fmt.Errorf("queue: enqueue %s: %w", j.Kind, err)
	}
	return id, nil
}

// ErrLeaseLost is returned by Done when the job no longer belongs to this
// run: its lease expired and it was handed out again.
var ErrLeaseLost = errors.New("queue: job's lease lost")

// Done deletes the running job j in tx, the handler's own transaction, so
// that what the job wrote and its completion commit together: one commit
// instead of two, and no moment after a crash where the work is committed
// but the job would run again. It fails with ErrLeaseLost when the lease
// was lost; the handler should then return the error so tx rolls back and
// the run that now holds the job does the work. If tx rolls back for any
// other reason after Done, the handler must return an error too (a nil
// return after a rollback leaves the job to run again once its lease
// expires: nothing is lost, but the work waits).
func Done(tx *gorm.DB, j *Job) error {
	res := tx.Exec(`DELETE FROM jobs`+owned, j.ID, j.LockedBy, j.Attempts)
	if res.Error != nil {
		return fmt.Errorf("queue: done job %d: %w", j.ID, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("queue: done job %d: %w", j.ID, ErrLeaseLost)
	}
	j.done = true
	return nil
}

// Handler runs one job. A nil error deletes the job (unless the handler
// did, with Done, in its own transaction); any other error
// schedules a retry with backoff until MaxAttempts is reached, after which
// the job is dead-lettered. Wrap the error with RetryAfter or Permanent to
// steer that, or return Snooze to put the job off without it counting as a
// failure. The context ends when the job's lease does, since after that
// another worker may run the job again.
type Handler func(ctx context.Context, j *Job) error

type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter makes the job's next attempt wait at least d, e.g. for a
// provider's Retry-After header. Backoff still applies when it is longer.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		err = errors.New("retry requested")
	}
	return &retryAfterError{after: d, err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent dead-letters the job at once: retrying cannot help, e.g. the
// recipient does not exist.
func Permanent(err error) error {
	if err == nil {
		err = errors.New("permanent failure")
	}
	return &permanentError{err: err}
}

type snoozeError struct {
	until time.Time
	err   error
}

func (e *snoozeError) Error() string { return e.err.Error() }
func (e *snoozeError) Unwrap() error { return e.err }

// Snooze puts the job off until the given time without spending an
// attempt: the worker sets run_at and gives the attempt back, so a job held
// for hours by a quota (not by a failure) is never dead-lettered for it.
// The job keeps its place at the head of its Key, so later jobs of the key
// wait behind it. reason is kept in last_error for an operator to read.
func Snooze(until time.Time, reason error) error {
	if reason == nil {
		reason = errors.New("snoozed")
	}
	return &snoozeError{until: until, err: reason}
}

// Snoozed reports whether err puts its job off (Snooze) rather than
// failing it, so a wrapper does not snooze it a second time.
func Snoozed(err error) bool {
	var sn *snoozeError
	return errors.As(err, &sn)
}

// Pending reports whether a job of kind with key waits to run, so that a
// self-renewing job (a daily refresh) is enqueued once, not once per caller.
func Pending(tx *gorm.DB, kind, key string) (bool, error) {
	var n int64
	err := tx.Raw(`SELECT COUNT(*) FROM jobs WHERE kind = ? AND queue_key = ? AND state = ?`, kind, key, StatePending).Scan(&n).Error
	if err != nil {
		return false, fmt.Errorf("queue: pending %s: %w", kind, err)
	}
	return n > 0, nil
}

// Followers lists, oldest first, up to limit pending jobs of j's kind and
// key other than j. Jobs of one key run one at a time, so none of them can
// start while j runs: a handler whose run can do their work too (a mirror
// run writes every message waiting for its CRM in one call) reads them,
// does it, and ends the ones it covered with Absorb.
func Followers(ctx context.Context, db *gorm.DB, j *Job, limit int) ([]*Job, error) {
	if j.Key == "" {
		return nil, nil
	}
	rows, err := db.WithContext(ctx).Raw(`SELECT `+jobColumns+` FROM jobs
		WHERE queue_key = ? AND kind = ? AND state = ? AND id <> ? ORDER BY id LIMIT ?`,
		j.Key, j.Kind, StatePending, j.ID, limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("queue: followers of job %d: %w", j.ID, err)
	}
	out, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("queue: followers of job %d: %w", j.ID, err)
	}
	return out, nil
}

// Absorb deletes, in tx, the followers of the running job j (see
// Followers) whose work j's run did, fenced by j's lease as Done is: with
// the lease lost it fails with ErrLeaseLost and deletes nothing, and the
// run that now holds j does their work.
func Absorb(tx *gorm.DB, j *Job, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var held int64
	if err := tx.Raw(`SELECT COUNT(*) FROM jobs`+owned, j.ID, j.LockedBy, j.Attempts).Scan(&held).Error; err != nil {
		return fmt.Errorf("queue: absorb into job %d: %w", j.ID, err)
	}
	if held != 1 {
		return fmt.Errorf("queue: absorb into job %d: %w", j.ID, ErrLeaseLost)
	}
	err := tx.Exec(`DELETE FROM jobs WHERE id IN ? AND queue_key = ? AND kind = ? AND state = ?`,
		ids, j.Key, j.Kind, StatePending).Error
	if err != nil {
		return fmt.Errorf("queue: absorb into job %d: %w", j.ID, err)
	}
	return nil
}

// Finish runs work on a view of st bound to one transaction (store.InTx)
// and ends the running job j in that transaction with Done: the job's
// writes and its end are one commit. An error from work, or ErrLeaseLost,
// rolls all of it back and is returned for the handler to return. Only for
// a handler whose writes are its last step: one that retries or snoozes
// after writing something must commit that on its own and return the error.
func Finish(ctx context.Context, st *store.Store, j *Job, work func(st *store.Store) error) error {
	return st.Tx(ctx, func(tx *gorm.DB) error {
		if err := work(st.InTx(tx)); err != nil {
			return err
		}
		return Done(tx, j)
	})
}
