package main

import (
	"context"
	"errors"
	"log/slog"
)

func pgRestart(ctx context.Context, c *cluster, cfg config, log *slog.Logger) ([]row, error) {
	return nil, errors.New("not yet")
}

func crmDown(ctx context.Context, c *cluster, cfg config, log *slog.Logger) ([]row, error) {
	return nil, errors.New("not yet")
}

func soak(ctx context.Context, c *cluster, cfg config, log *slog.Logger) ([]row, error) {
	return nil, errors.New("not yet")
}
