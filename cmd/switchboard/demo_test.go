package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/demo"
)

// The demo binds loopback only: its keys are public. A refused host
// fails before anything is made on disk.
func TestDemoRefusesNonLoopback(t *testing.T) {
	// Hosts this machine has no address for, so that a broken check
	// fails here rather than starting a demo on them.
	for _, host := range []string{"192.0.2.7", "example.com"} {
		data := filepath.Join(t.TempDir(), "d")
		var out, errb bytes.Buffer
		err := run([]string{"demo", "--host", host, "--port", "0", "--data", data, "--keep"}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("host %q: %v", host, err)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("host %q: the data directory was made (%v)", host, err)
		}
	}
	for _, host := range []string{"0.0.0.0", "::", "", "192.168.1.5", "10.0.0.1"} {
		if err := demo.CheckLoopback(host); err == nil {
			t.Fatalf("%q accepted", host)
		}
	}
	for _, host := range []string{"127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"} {
		if err := demo.CheckLoopback(host); err != nil {
			t.Fatalf("%q refused: %v", host, err)
		}
	}
}

// Without --keep the demo starts from nothing: a given directory must be
// empty (nothing a person keeps is reused or removed by surprise), and the
// temporary one it makes is removed on exit.
func TestDemoDataDir(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "switchboard.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := demoDataDir(full, false); err == nil || !strings.Contains(err.Error(), "--keep") {
		t.Fatalf("a used directory without --keep: %v", err)
	}
	if dir, _, err := demoDataDir(full, true); err != nil || dir != full {
		t.Fatalf("--keep: %q %v", dir, err)
	}
	dir, cleanup, err := demoDataDir("", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	cleanup()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the temporary directory stays: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The command prints the URLs and the login, serves the cabinet, and
// stops cleanly (every port closed) when asked.
func TestDemoRunsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, demo.Options{Host: "127.0.0.1", DataDir: t.TempDir()}, false, &out) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Admin API token") {
		select {
		case err := <-done:
			t.Fatalf("the demo ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no welcome:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cabinet := regexp.MustCompile(`Cabinet / Кабинет:\s+(\S+)`).FindStringSubmatch(out.String())
	if cabinet == nil || !strings.Contains(out.String(), demo.OwnerEmail) {
		t.Fatalf("welcome:\n%s", out.String())
	}
	resp, err := http.Get(cabinet[1] + "login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := http.Get(cabinet[1] + "login"); err == nil {
		t.Fatal("the gateway still answers after the stop")
	}
}

// A taken port says what to do: another --port, or 0 for free ports.
func TestDemoPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	var out bytes.Buffer
	err = runDemo(context.Background(), demo.Options{Host: "127.0.0.1", Port: port, DataDir: t.TempDir()}, false, &out)
	if err == nil || !strings.Contains(err.Error(), "--port 0") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("port %d taken: %v", port, err)
	}
}
