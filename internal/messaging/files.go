package messaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/switchboard/switchboard/internal/media"
)

// Kept files are files the workspace keeps for later sends (a quick
// reply's attachment), in the same media store messages' files live in,
// under keys of their own ("kept/<workspace>/<id>"). They are sent as an
// Upload, so they pass every check a file picked in the send box passes.

// KeptKey is where a workspace's kept file id lives in the media store.
func KeptKey(workspaceID, id string) string { return "kept/" + workspaceID + "/" + id }

// KeepFile stores data under key, replacing what was there.
func (s *Service) KeepFile(ctx context.Context, key string, data []byte) error {
	if _, err := s.files.Put(ctx, key, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("messaging: keep file: %w", err)
	}
	return nil
}

// KeptFile reads a kept file back, refusing one larger than limit.
func (s *Service) KeptFile(ctx context.Context, key string, limit int64) ([]byte, error) {
	f, err := s.files.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("messaging: open kept file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("messaging: read kept file: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("messaging: kept file %s is over %d bytes", key, limit)
	}
	return data, nil
}

// DropFile removes a kept file; one already gone is no error.
func (s *Service) DropFile(ctx context.Context, key string) error {
	if err := s.files.Delete(ctx, key); err != nil && !errors.Is(err, media.ErrNotFound) {
		return fmt.Errorf("messaging: drop kept file: %w", err)
	}
	return nil
}
