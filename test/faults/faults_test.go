package main

import (
	"bytes"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestKill9Small runs a small kill9 scenario: three gateway processes, a
// few hundred messages, one instance killed with SIGKILL in the middle.
// It builds the gateway and needs PostgreSQL (FAULTS_PG, default the local
// one), so it runs only with FAULTS=1.
func TestKill9Small(t *testing.T) {
	if os.Getenv("FAULTS") != "1" {
		t.Skip("set FAULTS=1 to start gateway processes on PostgreSQL")
	}
	cfg, err := parseFlags([]string{"-scenario", "kill9", "-n", "400", "-c", "16", "-senders", "100",
		"-lease", "5s", "-drain", "2m", "-work-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	start := time.Now()
	ok, err := run(t.Context(), cfg, &out, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Logf("took %s%s", time.Since(start).Round(time.Second), out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("a check failed (FAIL rows above)")
	}
}
