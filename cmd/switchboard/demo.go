package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/internal/app/demo"
)

// demoCommand runs "switchboard demo": the gateway with the Meta, Bitrix24
// and amoCRM simulators in this process, on loopback, with a seeded
// workspace, until Ctrl-C.
func demoCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "loopback address to listen on (127.0.0.1, ::1 or localhost; nothing else is accepted)")
	port := fs.Int("port", 8080, "the gateway's port; the Meta, Bitrix24 and amoCRM simulators take the next three (0: any free ports)")
	data := fs.String("data", "", "data directory (default: a temporary one removed on exit; with --keep, ./data-demo)")
	keep := fs.Bool("keep", false, "keep the data directory and reuse it on the next start")
	verbose := fs.Bool("v", false, "log every request of the gateway and the simulators")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see switchboard demo -h)", fs.Args())
	}
	// Checked before anything is made on disk.
	if err := demo.CheckLoopback(*host); err != nil {
		return err
	}
	dir, cleanup, err := demoDataDir(*data, *keep)
	if err != nil {
		return err
	}
	defer cleanup()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runDemo(ctx, demo.Options{Host: *host, Port: *port, DataDir: dir, Log: log}, *keep, stdout)
}

// runDemo starts the demo, prints the welcome and stops it when ctx ends.
func runDemo(ctx context.Context, o demo.Options, keep bool, stdout io.Writer) error {
	fmt.Fprintln(stdout, "Starting the demo in", o.DataDir, "…")
	d, err := demo.Start(ctx, o)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w\nport %d or one of the next three is taken: start with --port 0 (any free ports) or another --port", err, o.Port)
	}
	if err != nil {
		return err
	}
	d.PrintWelcome(stdout)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nStopping the demo…")
	drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(drain); err != nil {
		return fmt.Errorf("demo: stop: %w", err)
	}
	if keep {
		fmt.Fprintln(stdout, "Stopped; the data stays in", o.DataDir, "(start again with --keep)")
	}
	return nil
}

// demoDataDir picks the data directory. Without --keep the demo starts
// from nothing: a temporary directory, removed on exit; a directory given
// with --data must then be empty, so nothing a person keeps is reused or
// removed by surprise.
func demoDataDir(data string, keep bool) (string, func(), error) {
	none := func() {}
	if keep {
		if data == "" {
			data = "data-demo"
		}
		if err := os.MkdirAll(data, 0o700); err != nil {
			return "", none, fmt.Errorf("demo: data directory: %w", err)
		}
		return data, none, nil
	}
	if data == "" {
		dir, err := os.MkdirTemp("", "switchboard-demo-")
		if err != nil {
			return "", none, fmt.Errorf("demo: data directory: %w", err)
		}
		return dir, func() {
			if err := os.RemoveAll(dir); err != nil {
				fmt.Fprintln(os.Stderr, "switchboard demo: remove", dir+":", err)
			}
		}, nil
	}
	entries, err := os.ReadDir(data)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", none, fmt.Errorf("demo: data directory: %w", err)
	}
	if len(entries) > 0 {
		return "", none, fmt.Errorf("demo: %s holds an earlier demo: pass --keep to reuse it, or choose an empty directory", data)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", none, fmt.Errorf("demo: data directory: %w", err)
	}
	return data, none, nil
}
