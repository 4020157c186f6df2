// Command switchboard runs the gateway.
//
//	switchboard [serve] [--config file.yaml]   run the gateway (default)
//	switchboard migrate [--config file.yaml]   apply database migrations and exit
//	switchboard healthcheck [--config …]       exit 0 when the local gateway is ready (container health checks)
//	switchboard user add --email … --role …    add a web cabinet user
//	switchboard amocrm-widget pack [-o f.zip]  write the amoCRM widget archive
//	switchboard demo [--port 8080] [--keep]    the gateway with simulators and a seeded workspace, on loopback
//	switchboard version                        print the version
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // workspaces' time zones must resolve on minimal images

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := runIn(os.Stdin, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

const usage = `Usage: switchboard [command] [--config file.yaml]

Commands:
  serve        run the gateway (the default)
  migrate      apply the database migrations and exit
  healthcheck  exit 0 when the gateway on this machine answers /readyz
  user add     add a web cabinet user: --email, --role owner|admin|manager,
               --workspace (default: the default workspace), --name, and
               --password-stdin to read the password from the first line
               of stdin (else one is generated and printed once)
  amocrm-widget pack
               write the amoCRM widget archive for upload: -o (default
               amocrm-widget.zip), --gateway-url (default SWITCHBOARD_PUBLIC_URL)
  demo         run the gateway with the Meta, Bitrix24 and amoCRM simulators
               on loopback with a seeded workspace, and print the URLs and
               the login: --port (default 8080, the simulators take the
               next three), --host, --data, --keep (see switchboard demo -h)
  version      print the version
  help         print this help

Settings come from SWITCHBOARD_* environment variables or the YAML file
(config/switchboard.example.yaml explains each); the environment wins.

Flags:
`

// run is runIn with nothing on stdin.
func run(args []string, stdout, stderr io.Writer) error {
	return runIn(strings.NewReader(""), args, stdout, stderr)
}

func runIn(stdin io.Reader, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if cmd == "user" {
		return userCommand(stdin, args, stdout, stderr)
	}
	if cmd == "amocrm-widget" {
		return amocrmWidgetCommand(args, stdout, stderr)
	}
	if cmd == "demo" {
		return demoCommand(args, stdout, stderr)
	}
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (environment variables override it)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if cmd == "help" {
		fs.SetOutput(stdout)
		fs.Usage()
		return nil
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // asked for help; the usage is printed
		}
		return err
	}
	// The command may also follow the flags (switchboard --config c.yaml
	// migrate); anything else left over is a mistake, not a reason to serve.
	if rest := fs.Args(); len(rest) > 0 {
		if cmd != "serve" || len(args) == 0 || args[0] == "serve" || len(rest) > 1 {
			return fmt.Errorf("unexpected arguments %q (see switchboard help)", rest)
		}
		cmd = rest[0]
		if cmd == "help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "switchboard", version)
		return nil
	case "serve", "migrate", "healthcheck":
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, healthcheck, user, amocrm-widget, demo, version, help)", cmd)
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg, os.Stderr)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cmd == "healthcheck" {
		return healthcheck(ctx, cfg)
	}
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

// healthcheck asks the gateway on this machine whether it is ready; the
// image has no shell or curl for a container's health check to use.
func healthcheck(ctx context.Context, cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, config.LocalURL(cfg.HTTPAddr)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /readyz answered %s", resp.Status)
	}
	return nil
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	// The port first: a taken port must fail before anything is generated,
	// printed or started.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen %s (metrics): %w", cfg.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}
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
		// The uploads' deadline; every other route shortens it to
		// SWITCHBOARD_BODY_READ_TIMEOUT once its handler starts.
		ReadTimeout:  cfg.UploadReadTimeout,
		WriteTimeout: 2 * time.Minute,
		IdleTimeout:  2 * time.Minute,
	}
	srv.RegisterOnShutdown(a.CloseStreams)
	engine := "sqlite"
	if cfg.DatabaseURL != "" {
		engine = "postgres"
	}
	log.Info("switchboard listening", "addr", ln.Addr().String(), "database", engine, "version", version)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	var metricsSrv *http.Server
	if metricsLn != nil {
		metricsSrv = &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second}
		log.Info("metrics listening", "addr", metricsLn.Addr().String())
		go func() { errc <- metricsSrv.Serve(metricsLn) }()
	}

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
	var merr error
	if metricsSrv != nil {
		merr = metricsSrv.Shutdown(drain)
	}
	qerr := a.Close(drain)
	if err := errors.Join(herr, merr, qerr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// userCommand runs "switchboard user add": it creates a cabinet user in the
// database the configuration names (the operator's way to the first
// owner). The password comes from stdin's first line with
// --password-stdin, else one is generated and printed once.
func userCommand(stdin io.Reader, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New(`usage: switchboard user add --email … --role owner|admin|manager [--workspace id] [--name …] [--password-stdin] [--config file.yaml]`)
	}
	fs := flag.NewFlagSet("switchboard user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (environment variables override it)")
	ws := fs.String("workspace", "", "the workspace's id (default: the default workspace)")
	email := fs.String("email", "", "the user's e-mail, used to sign in")
	name := fs.String("name", "", "the user's name")
	role := fs.String("role", "", "owner, admin or manager")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var pw string
	if *fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the password from stdin: %w", err)
		}
		if pw = strings.TrimRight(line, "\r\n"); pw == "" {
			return errors.New("--password-stdin: stdin's first line is empty")
		}
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	u, generated, err := app.AddUser(ctx, cfg, log, *ws, web.NewUser{Email: *email, Name: *name, Role: *role, Password: pw})
	if err != nil {
		if fe := fault.As(err); fe != nil {
			return fmt.Errorf("%s: %s", fe.Code, fe.Message)
		}
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("workspace_not_found: no workspace %q", *ws)
		}
		return err
	}
	// The database is named: run without the gateway's settings, the
	// command writes to a SQLite file of its own, and signing in to a
	// gateway on PostgreSQL would then fail with no hint why.
	fmt.Fprintf(stdout, "user %s added to workspace %s in %s: %s (%s)\n", u.ID, u.WorkspaceID, databaseName(cfg), u.Email, u.Role)
	if generated != "" {
		fmt.Fprintf(stdout, "\nPassword (shown once):\n\n    %s\n\n", generated)
	}
	return nil
}

// databaseName says which database a configuration opens, without its
// credentials: "PostgreSQL db on host:port" or "SQLite /path/switchboard.db".
func databaseName(cfg *config.Config) string {
	if cfg.DatabaseURL == "" {
		if abs, err := filepath.Abs(cfg.SQLitePath()); err == nil {
			return "SQLite " + abs + " (set SWITCHBOARD_DATABASE_URL to use the gateway's PostgreSQL)"
		}
		return "SQLite " + cfg.SQLitePath()
	}
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		return "PostgreSQL"
	}
	return "PostgreSQL " + strings.TrimPrefix(u.Path, "/") + " on " + u.Host
}
