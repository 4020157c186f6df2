package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func senderOf(t *testing.T, payload []byte) string {
	t.Helper()
	var h struct {
		Entry []struct {
			Changes []struct {
				Value struct {
					Messages []struct {
						From string `json:"from"`
					} `json:"messages"`
				} `json:"value"`
			} `json:"changes"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(payload, &h); err != nil {
		t.Fatal(err)
	}
	return h.Entry[0].Changes[0].Value.Messages[0].From
}

// The unique messages go to exactly N customers, as evenly as the count
// allows, numbered from the offset; N above the unique count is clamped.
func TestSendersSpreadExactlyN(t *testing.T) {
	for _, c := range []struct {
		n, senders, offset int
		dups               float64
		want               int
	}{
		{n: 1000, senders: 1, want: 1},
		{n: 1000, senders: 7, want: 7},
		{n: 1000, senders: 333, offset: 5000, want: 333},
		{n: 1000, senders: 900, dups: 0.1, want: 900},
		{n: 100, senders: 3000, want: 100},
		{n: 100, senders: 3000, dups: 0.5, want: 50},
	} {
		cfg := config{n: c.n, senders: c.senders, senderOffset: c.offset, duplicates: c.dups, concurrency: 4}
		p, err := buildPlan(cfg, channel{phoneNumberID: "1", wabaID: "2", displayPhone: "+1"}, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		perSender := map[string]int{}
		seen := map[string]bool{}
		for _, s := range p.sends {
			key := string(s)
			if seen[key] {
				continue // a verbatim duplicate is the same message
			}
			seen[key] = true
			perSender[senderOf(t, s)]++
		}
		if len(perSender) != c.want || p.senders != c.want {
			t.Errorf("%+v: %d distinct senders (plan says %d), want %d", c, len(perSender), p.senders, c.want)
		}
		lo, hi := len(seen), 0
		for from, k := range perSender {
			lo, hi = min(lo, k), max(hi, k)
			var idx int
			if _, err := fmt.Sscanf(from, "7705%07d", &idx); err != nil || idx < c.offset || idx >= c.offset+c.want {
				t.Errorf("%+v: sender %s outside offset range", c, from)
			}
		}
		if hi-lo > 1 {
			t.Errorf("%+v: uneven spread, %d..%d messages per sender", c, lo, hi)
		}
	}
}

func tableGone(t *testing.T, driver, dsn, table string) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	q := "SELECT count(*) FROM sqlite_master WHERE name = $1"
	if driver == "pgx" {
		q = "SELECT count(*) FROM pg_class WHERE relname = $1"
	}
	if err := db.QueryRow(q, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("table %s left behind", table)
	}
}

func checkRaw(t *testing.T, target rawTarget) {
	var out bytes.Buffer
	cfg, err := parseFlags([]string{"-raw", "-n", "300", "-c", "8"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rawPhase(context.Background(), cfg, target, &out, quiet())
	if err != nil {
		t.Fatalf("raw: %v\n%s", err, out.String())
	}
	t.Logf("report:\n%s", out.String())
	if res.inserted != 300 || res.stored != 300 || len(res.latencies) != 300 {
		t.Errorf("inserted %d, stored %d, %d latencies; want 300 each", res.inserted, res.stored, len(res.latencies))
	}
	if !strings.HasPrefix(res.table, fmt.Sprintf("load_raw_%d_", os.Getpid())) {
		t.Errorf("table %q", res.table)
	}
	for _, s := range []string{"raw rate", "rows/s", "300 of 300", "p99", res.table} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q", s)
		}
	}
	tableGone(t, target.driver, target.dsn, res.table)
}

func TestRawSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raw.db")
	target, err := parseRawDB(path, false)
	if err != nil {
		t.Fatal(err)
	}
	checkRaw(t, target)
}

func TestRawPostgres(t *testing.T) {
	dsn := os.Getenv("TEST_DATABASE_URL")
	if dsn == "" {
		t.Skip("TEST_DATABASE_URL not set")
	}
	target, err := parseRawDB(dsn, false)
	if err != nil {
		t.Fatal(err)
	}
	checkRaw(t, target)
}

// An interrupted raw run is a failure, not a low rate.
func TestRawFailureReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raw.db")
	target, err := parseRawDB(path, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg, _ := parseFlags([]string{"-raw", "-n", "50", "-c", "2"})
	if _, err := rawPhase(ctx, cfg, target, &bytes.Buffer{}, quiet()); err == nil {
		t.Error("a cancelled raw run reported success")
	}
}

func TestParseRawDB(t *testing.T) {
	for _, bad := range []string{"", ":memory:", "sqlite:", "mysql://127.0.0.1/x", "postgres://db.example.com/x", "postgres://10.0.0.5/x"} {
		if _, err := parseRawDB(bad, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parseRawDB("postgres://db.example.com/x", true); err != nil {
		t.Errorf("-allow-remote: %v", err)
	}
	pg, err := parseRawDB("postgres://u:secret@127.0.0.1:5432/x?sslmode=disable", false)
	if err != nil || pg.driver != "pgx" || strings.Contains(pg.display, "secret") || !strings.Contains(pg.dsn, "secret") {
		t.Errorf("%+v %v", pg, err)
	}
	lite, err := parseRawDB("sqlite:/tmp/x.db", false)
	if err != nil || lite.driver != "sqlite" || !strings.HasPrefix(lite.dsn, "/tmp/x.db?") || !strings.Contains(lite.dsn, "synchronous(NORMAL)") {
		t.Errorf("%+v %v", lite, err)
	}
}

func TestCompareTable(t *testing.T) {
	ms := func(vals ...int) []time.Duration {
		var d []time.Duration
		for _, v := range vals {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	gw := result{acked2xx: 500, elapsed: 2 * time.Second, latencies: ms(10, 20, 30, 40)}
	raw := rawResult{inserted: 4000, elapsed: 2 * time.Second, latencies: ms(1, 2, 3, 4)}
	var out bytes.Buffer
	reportCompare(&out, gw, raw)
	t.Logf("\n%s", out.String())
	for _, s := range []string{"250.0", "2000.0", "ratio      0.125", "20ms", "40ms", "2ms", "4ms"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
	out.Reset()
	reportCompare(&out, gw, rawResult{})
	if !strings.Contains(out.String(), "ratio      n/a") {
		t.Errorf("no raw rows:\n%s", out.String())
	}
}

// -raw-compare: the gateway run, then the raw run on the same -n and -c,
// then the side-by-side table.
func TestRawCompareRun(t *testing.T) {
	g, srv := newFakeGateway(t, "load-app-secret")
	db := filepath.Join(t.TempDir(), "raw.db")
	cfg, err := parseFlags([]string{"-url", srv.URL, "-n", "200", "-c", "4", "-senders", "50", "-sender-offset", "1000", "-raw-compare", "-raw-db", db})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out, quiet()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("report:\n%s", out.String())
	g.mu.Lock()
	if g.posts != 200 || len(g.senders) != 50 || !g.senders["77050001000"] || !g.senders["77050001049"] {
		t.Errorf("posts %d, %d senders", g.posts, len(g.senders))
	}
	g.mu.Unlock()
	for _, s := range []string{"50 distinct customers", "+77050001000…+77050001049", "acks/s", "200 of 200", "gateway", "ratio"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q", s)
		}
	}
}

func TestRawFlagValidation(t *testing.T) {
	for _, args := range [][]string{{"-raw", "-raw-compare"}, {"-sender-offset", "-1"}, {"-senders", "10", "-sender-offset", "9999995"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	cfg, _ := parseFlags([]string{"-raw", "-raw-db", ""})
	if err := run(context.Background(), cfg, &bytes.Buffer{}, quiet()); err == nil || !strings.Contains(err.Error(), "-raw-db") {
		t.Errorf("-raw without a database: %v", err)
	}
}
