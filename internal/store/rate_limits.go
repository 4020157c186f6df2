package store

import (
	"context"
	"fmt"
	"time"
)

// RatePolicy is a rate as the generic cell rate algorithm (GCRA) keeps it:
// one call per Interval on average, up to Burst at once.
type RatePolicy struct {
	Interval time.Duration
	Burst    int
}

// micros are the policy's interval and tolerance (how far ahead of its
// theoretical time a call may go) in whole microseconds, the interval
// rounded up so that rounding never lets a call through early.
func (p RatePolicy) micros() (interval, tolerance int64) {
	interval = int64((p.Interval + time.Microsecond - 1) / time.Microsecond)
	if interval < 1 {
		interval = 1
	}
	return interval, interval * int64(max(p.Burst, 1)-1)
}

// RateSlot is one call's place in a key's rate, on the database's clock.
type RateSlot struct {
	// Granted: the slot is the caller's. False when it would have come
	// later than the caller could wait; nothing was taken then.
	Granted bool
	// At is when the call may go; Now is when the slot was handed out.
	// The caller waits At.Sub(Now): a duration, so its own clock's offset
	// from the database's does not matter.
	At  time.Time
	Now time.Time
	// tat is the key's theoretical arrival time this slot left behind,
	// which GiveBackRateSlot checks is still the latest.
	tat int64
}

// Wait is how long the caller waits before its call.
func (s RateSlot) Wait() time.Duration { return max(s.At.Sub(s.Now), 0) }

// TakeRateSlot hands out the next slot of key's rate to one caller among
// all gateway instances on the database (issue 8), in one atomic upsert on
// the key's row: the row keeps the GCRA's theoretical arrival time (TAT);
// a call may go at TAT − tolerance (or now, if later), and moves TAT on by
// one interval. Concurrent callers queue on the row lock and each sees the
// previous one's TAT, so the slots handed out never exceed Burst plus
// one per Interval in any window, however many instances ask.
//
// When the slot would come later than maxWait from now, nothing is taken
// and the slot is returned with Granted false: the same statement decides
// and reserves, so a caller that cannot wait costs no one else a slot.
//
// On PostgreSQL the time is the database's (clock_timestamp()), so the
// instances' clocks may disagree; SQLite serves one process, whose clock
// it uses.
func (s *Store) TakeRateSlot(ctx context.Context, key string, p RatePolicy, maxWait time.Duration) (RateSlot, error) {
	interval, tolerance := p.micros()
	limit := max(int64(maxWait/time.Microsecond), 0)
	var rows []struct {
		Tat int64
		Now int64
	}
	var err error
	if s.DB.Dialect == Postgres {
		// The CTE reads the clock once (MATERIALIZED), so the slot and the
		// wait come from one reading; excluded.tat − interval is that now.
		// It is read before any wait for the row lock, but a caller that
		// waited finds TAT just moved an interval on by the lock's holder,
		// so its earlier "now" only makes it wait a little longer.
		err = s.g(ctx).Raw(`WITH c AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now)
INSERT INTO crm_rate_limits AS r (key, tat) SELECT ?, c.now + ? FROM c
ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat + ?, excluded.tat)
WHERE r.tat - ? - (excluded.tat - ?) <= ?
RETURNING r.tat, (SELECT now FROM c) AS now`, key, interval, interval, tolerance, interval, limit).Scan(&rows).Error
	} else {
		now := time.Now().UnixMicro()
		err = s.g(ctx).Raw(`INSERT INTO crm_rate_limits AS r (key, tat) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET tat = max(r.tat + ?, excluded.tat)
WHERE r.tat - ? - (excluded.tat - ?) <= ?
RETURNING tat, ? AS now`, key, now+interval, interval, tolerance, interval, limit, now).Scan(&rows).Error
	}
	if err != nil {
		return RateSlot{}, fmt.Errorf("store: take rate slot: %w", err)
	}
	if len(rows) == 1 {
		r := rows[0]
		return RateSlot{Granted: true, At: time.UnixMicro(max(r.Tat-interval-tolerance, r.Now)).UTC(), Now: time.UnixMicro(r.Now).UTC(), tat: r.Tat}, nil
	}
	// Refused: read where the slot would have been, for the caller's error.
	// Another caller may move TAT meanwhile; this is only a report.
	var cur []struct {
		Tat int64
		Now int64
	}
	q := `SELECT tat, ? AS now FROM crm_rate_limits WHERE key = ?`
	args := []any{time.Now().UnixMicro(), key}
	if s.DB.Dialect == Postgres {
		q = `SELECT tat, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now FROM crm_rate_limits WHERE key = ?`
		args = args[1:]
	}
	if err := s.g(ctx).Raw(q, args...).Scan(&cur).Error; err != nil {
		return RateSlot{}, fmt.Errorf("store: read rate slot: %w", err)
	}
	if len(cur) != 1 {
		return RateSlot{}, fmt.Errorf("store: rate slot of %q refused, then its row is gone", key)
	}
	c := cur[0]
	return RateSlot{At: time.UnixMicro(max(c.Tat-tolerance, c.Now)).UTC(), Now: time.UnixMicro(c.Now).UTC()}, nil
}

// GiveBackRateSlot returns a granted slot its caller did not use (its
// context ended while it waited), if no one took a slot after it: moving
// TAT back past a later caller's slot would let the next caller share that
// slot. It reports whether the slot went back.
func (s *Store) GiveBackRateSlot(ctx context.Context, key string, p RatePolicy, slot RateSlot) (bool, error) {
	if !slot.Granted {
		return false, nil
	}
	interval, _ := p.micros()
	res := s.g(ctx).Exec(`UPDATE crm_rate_limits SET tat = tat - ? WHERE key = ? AND tat = ?`, interval, key, slot.tat)
	if res.Error != nil {
		return false, fmt.Errorf("store: give back rate slot: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}
