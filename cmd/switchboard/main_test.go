package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/config"
)

func TestCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"version"}, &out, &errb); err != nil || !strings.Contains(out.String(), "switchboard") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := run([]string{"fly"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: %v", err)
	}
	dir := t.TempDir()
	t.Setenv("SWITCHBOARD_DATA_DIR", dir)
	out.Reset()
	if err := run([]string{"migrate"}, &out, &errb); err != nil || !strings.Contains(out.String(), "sqlite") {
		t.Fatalf("migrate: %v %q", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "switchboard.db")); err != nil {
		t.Fatalf("migrate made no database: %v", err)
	}
	t.Setenv("SWITCHBOARD_QUEUE_WORKERS", "0")
	if err := run([]string{"serve"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_QUEUE_WORKERS") {
		t.Fatalf("bad setting: %v", err)
	}
}

// serve answers until its context ends (SIGTERM), then drains and returns
// without error; the admin token it generated is printed once and kept.
func TestServeDrainsOnShutdown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	mln, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsAddr := mln.Addr().String()
	mln.Close()
	dir := t.TempDir()
	cfg, err := config.Load("", []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_HTTP_ADDR=" + addr, "SWITCHBOARD_METRICS_ADDR=" + metricsAddr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, app.NewLogger(cfg, os.Stderr), &out) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// With a metrics address the series are there, without a token, and
	// not on the public listener.
	for url, want := range map[string]int{"http://" + metricsAddr + "/metrics": 200, "http://" + addr + "/metrics": 404} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", url, resp.StatusCode, want)
		}
	}
	if err := healthcheck(context.Background(), cfg); err != nil {
		t.Fatalf("healthcheck of a ready gateway: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not return after shutdown")
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "admin_token"))
	if len(tok) == 0 || !strings.Contains(out.String(), strings.TrimSpace(string(tok))) {
		t.Fatalf("admin token not printed/kept: %q", out.String())
	}
}

func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}} {
		var out, errb bytes.Buffer
		if err := run(args, &out, &errb); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		text := out.String() + errb.String()
		for _, want := range []string{"serve", "migrate", "healthcheck", "version", "-config"} {
			if !strings.Contains(text, want) {
				t.Fatalf("%v: help lacks %q:\n%s", args, want, text)
			}
		}
	}
}

// A first start that fails (here: the port is taken; before, a wrong
// database URL did the same) must not generate the admin token, or the
// next start would find it on disk and never show it.
func TestFailedFirstStartStillShowsTheTokenLater(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfg, err := config.Load("", []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_HTTP_ADDR=" + taken.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := serve(context.Background(), cfg, app.NewLogger(cfg, os.Stderr), &out); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("a taken port: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "admin_token")); !os.IsNotExist(err) || out.Len() != 0 {
		t.Fatalf("a start that could not listen generated or printed the token: %v %q", err, out.String())
	}

	cfg, err = config.Load("", []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_DATABASE_URL=postgres://nobody@127.0.0.1:1/none?connect_timeout=2",
		"SWITCHBOARD_SECRET_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.New(context.Background(), cfg, app.NewLogger(cfg, os.Stderr)); err == nil {
		t.Fatal("a database that does not answer was accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "admin_token")); !os.IsNotExist(err) {
		t.Fatalf("a start whose database failed generated the token: %v", err)
	}
}

// The command may follow the flags; a stray word never starts the server.
func TestCommandAfterFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"), 0o600)
	var out, errb bytes.Buffer
	if err := run([]string{"--config", cfg, "version"}, &out, &errb); err != nil || !strings.Contains(out.String(), "switchboard") {
		t.Fatalf("flags then version: %v %q", err, out.String())
	}
	out.Reset()
	if err := run([]string{"--config", cfg, "migrate"}, &out, &errb); err != nil || !strings.Contains(out.String(), "migrations applied") {
		t.Fatalf("flags then migrate: %v %q", err, out.String())
	}
	for _, args := range [][]string{{"--config", cfg, "fly"}, {"migrate", "--config", cfg, "extra"}, {"--config", cfg, "version", "now"}} {
		if err := run(args, &out, &errb); err == nil {
			t.Fatalf("%v was accepted", args)
		}
	}
}
