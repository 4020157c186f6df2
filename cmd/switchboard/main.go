// Command switchboard runs the gateway.
//
//	switchboard [serve] [--config file.yaml]   run the gateway (default)
//	switchboard migrate [--config file.yaml]   apply database migrations and exit
//	switchboard version                        print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // workspaces' time zones must resolve on minimal images

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("switchboard "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (environment variables override it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "switchboard", version)
		return nil
	case "serve", "migrate":
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, version)", cmd)
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg, os.Stderr)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cmd == "migrate" {
		db, err := app.OpenDB(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied on", db.Dialect)
		return nil
	}
	return serve(ctx, cfg, log, stdout)
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if a.NewAdminToken {
		// Printed once, on the start that made it; it stays in the data dir.
		fmt.Fprintf(stdout, "\nAdmin token (shown once, kept in %s/admin_token):\n\n    %s\n\n", cfg.DataDir, a.AdminToken)
	}
	// Workers stop on their own context, after the HTTP server has drained,
	// so work accepted during the drain is still picked up.
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	if err := a.Start(workCtx); err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // uploads
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	engine := "sqlite"
	if cfg.DatabaseURL != "" {
		engine = "postgres"
	}
	log.Info("switchboard listening", "addr", ln.Addr().String(), "database", engine, "version", version)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests and queue work", "timeout", cfg.ShutdownTimeout)
	drain, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	herr := srv.Shutdown(drain)
	qerr := a.Close(drain)
	if err := errors.Join(herr, qerr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
