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
	dir := t.TempDir()
	cfg, err := config.Load("", []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_HTTP_ADDR=" + addr})
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
