package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/glebarez/go-sqlite"  // "sqlite" for database/sql, the driver the gateway's SQLite store uses
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" for database/sql, the driver the gateway's PostgreSQL store uses
)

// rawTarget is the database a -raw run writes to.
type rawTarget struct {
	driver  string // "pgx" or "sqlite"
	dsn     string
	display string // without password
}

// parseRawDB tells PostgreSQL URLs from SQLite file paths. The SQLite DSN
// gets the gateway's own pragmas (WAL, synchronous NORMAL) so the raw rate
// is the ceiling of the gateway's configuration, not of another one.
func parseRawDB(s string, allowRemote bool) (rawTarget, error) {
	if s == "" {
		return rawTarget{}, errors.New("-raw needs -raw-db or SWITCHBOARD_DATABASE_URL")
	}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return rawTarget{}, fmt.Errorf("-raw-db %q is not a postgres:// URL with a host", redact(s))
		}
		if !allowRemote && !isLoopback(u.Hostname()) {
			return rawTarget{}, fmt.Errorf("refusing non-loopback database host %q without -allow-remote", u.Hostname())
		}
		return rawTarget{driver: "pgx", dsn: s, display: redact(s)}, nil
	}
	if strings.Contains(s, "://") {
		return rawTarget{}, fmt.Errorf("-raw-db %q: want a postgres:// URL or a SQLite file path", redact(s))
	}
	path := strings.TrimPrefix(s, "sqlite:")
	if path == "" || path == ":memory:" {
		return rawTarget{}, errors.New("-raw-db: a SQLite run needs a file path (memory is not durable)")
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	dsn := path + sep + "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	return rawTarget{driver: "sqlite", dsn: dsn, display: "sqlite " + path}, nil
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// rawResult is a -raw run: rows inserted one transaction each, timed like
// webhook acknowledgements.
type rawResult struct {
	table     string
	attempted int
	inserted  int
	stored    int // counted back before the table is dropped
	latencies []time.Duration
	elapsed   time.Duration
	errSample []string
	timedOut  bool
}

// runRaw inserts n message-shaped rows into a scratch table with the given
// concurrency, each row its own autocommitted statement (one transaction and
// one durable commit, as the gateway's per-webhook commit), counts them and
// drops the table. It never touches the gateway's tables: the scratch table
// is named after this process and a random suffix and created here.
func runRaw(ctx context.Context, t rawTarget, n, concurrency int, seed uint64) (res rawResult, err error) {
	db, err := sql.Open(t.driver, t.dsn)
	if err != nil {
		return res, fmt.Errorf("raw: open %s: %w", t.display, err)
	}
	defer db.Close()
	if t.driver == "sqlite" {
		// As the gateway: one writer connection; the workers queue for it.
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(concurrency)
		db.SetMaxIdleConns(concurrency)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	res.table = fmt.Sprintf("load_raw_%d_%04x", os.Getpid(), rng.IntN(1<<16))
	ts := "timestamptz"
	if t.driver == "sqlite" {
		ts = "text"
	}
	create := fmt.Sprintf(`CREATE TABLE %s (id text PRIMARY KEY, channel text NOT NULL, body text NOT NULL, created_at %s NOT NULL)`, res.table, ts)
	if _, err = db.ExecContext(ctx, create); err != nil {
		return res, fmt.Errorf("raw: create %s: %w", res.table, err)
	}
	defer func() {
		// Dropped even when the run is interrupted: a fresh context, since ctx may be done.
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, derr := db.ExecContext(dctx, "DROP TABLE "+res.table); derr != nil {
			err = errors.Join(err, fmt.Errorf("raw: drop %s: %w", res.table, derr))
		}
	}()
	// Open the pool's connections before the clock starts, as the gateway's
	// pool is warm when webhooks arrive.
	var warm sync.WaitGroup
	for range min(concurrency, 64) {
		warm.Go(func() {
			if c, cerr := db.Conn(ctx); cerr == nil {
				time.Sleep(10 * time.Millisecond) // hold it so the next worker opens its own
				_ = c.Close()                     // returns it to the pool
			}
		})
	}
	warm.Wait()

	insert := fmt.Sprintf(`INSERT INTO %s (id, channel, body, created_at) VALUES ($1, $2, $3, $4)`, res.table)
	jobs := make(chan int)
	var mu sync.Mutex
	res.latencies = make([]time.Duration, 0, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for i := range jobs {
				id := fmt.Sprintf("wamid.load%08d%04x", i, i*7919%65536)
				body := fmt.Sprintf("load message %d / сообщение %d", i, i)
				now := time.Now().UTC()
				var at any = now
				if t.driver == "sqlite" {
					at = now.Format(time.RFC3339Nano)
				}
				t0 := time.Now()
				_, ierr := db.ExecContext(ctx, insert, id, "ch_load", body, at)
				lat := time.Since(t0)
				mu.Lock()
				res.attempted++
				if ierr == nil {
					res.inserted++
					res.latencies = append(res.latencies, lat)
				} else if ctx.Err() == nil && len(res.errSample) < 3 {
					res.errSample = append(res.errSample, ierr.Error())
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err = db.QueryRowContext(cctx, "SELECT count(*) FROM "+res.table).Scan(&res.stored); err != nil {
		return res, fmt.Errorf("raw: count %s: %w", res.table, err)
	}
	return res, nil
}

func reportRaw(out io.Writer, t rawTarget, concurrency int, res rawResult) {
	lat := slices.Clone(res.latencies)
	slices.Sort(lat)
	fmt.Fprintf(out, "raw target   %s (table %s, created and dropped)\n", t.display, res.table)
	fmt.Fprintf(out, "raw plan     %d single-row INSERTs, one transaction each, concurrency %d\n", res.attempted, concurrency)
	fmt.Fprintf(out, "raw stored   %d of %d inserted (counted before the drop)\n", res.stored, res.inserted)
	fmt.Fprintf(out, "raw sent     %d in %s\n", res.attempted, res.elapsed.Round(time.Millisecond))
	if secs := res.elapsed.Seconds(); secs > 0 {
		fmt.Fprintf(out, "raw rate     %.1f rows/s\n", float64(res.inserted)/secs)
	}
	fmt.Fprintf(out, "raw latency  p50 %s  p90 %s  p99 %s  max %s  (n=%d)\n",
		fmtDur(percentile(lat, 50)), fmtDur(percentile(lat, 90)), fmtDur(percentile(lat, 99)), fmtDur(percentile(lat, 100)), len(lat))
	for _, e := range res.errSample {
		fmt.Fprintf(out, "raw error    %s\n", e)
	}
}

// rate is successes per second of a run.
func rate(ok int, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(ok) / elapsed.Seconds()
}

// reportCompare prints the gateway's run next to the raw one: the ratio is
// the share of the database's commit rate the gateway turns into
// acknowledgements.
func reportCompare(out io.Writer, gw result, raw rawResult) {
	gl := slices.Clone(gw.latencies)
	slices.Sort(gl)
	rl := slices.Clone(raw.latencies)
	slices.Sort(rl)
	gr, rr := rate(gw.acked2xx, gw.elapsed), rate(raw.inserted, raw.elapsed)
	fmt.Fprintf(out, "\n%-10s %12s %10s %10s\n", "", "per second", "p50", "p99")
	fmt.Fprintf(out, "%-10s %12.1f %10s %10s\n", "gateway", gr, fmtDur(percentile(gl, 50)), fmtDur(percentile(gl, 99)))
	fmt.Fprintf(out, "%-10s %12.1f %10s %10s\n", "raw", rr, fmtDur(percentile(rl, 50)), fmtDur(percentile(rl, 99)))
	if rr > 0 {
		fmt.Fprintf(out, "ratio      %.3f (gateway acks/s ÷ raw rows/s)\n", gr/rr)
	} else {
		fmt.Fprintln(out, "ratio      n/a (no raw rows)")
	}
}
