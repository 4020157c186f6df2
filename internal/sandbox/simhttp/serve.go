// Package simhttp runs a simulator's HTTP server for the standalone
// simulator commands.
package simhttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Serve runs srv until ctx ends, then shuts it down within five seconds.
// It returns at once if the listener fails.
func Serve(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("listen on %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
