package simhttp

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Main is a simulator command's main: it parses args with parse, then runs
// run until SIGINT or SIGTERM, logging to stderr. It exits 2 on bad flags
// (0 for -h) and 1 when run fails, so the three simulator commands behave
// alike.
func Main[C any](name string, args []string, parse func([]string) (C, error), run func(context.Context, C, *slog.Logger) error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		logger.Error("bad flags", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, logger)
	stop()
	if err != nil {
		logger.Error(name+" stopped", "err", err)
		os.Exit(1)
	}
}

// EnvOr returns the environment variable key, or def when it is unset or
// empty: a flag's default that a deployment may set without flags.
func EnvOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
