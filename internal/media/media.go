// Package media keeps files (customers' photos, voice notes, documents and
// operators' uploads) and signs the expiring links CRMs fetch them by.
package media

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Store keeps file bodies by key. The local directory is the default; an
// S3 store implements the same three methods.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
	Delete(ctx context.Context, key string) error
}

// ErrNotFound is returned for a key that is not stored.
var ErrNotFound = errors.New("media: not found")

// LocalStore keeps files under a directory.
type LocalStore struct{ dir string }

func NewLocalStore(dir string) (*LocalStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("media: create dir: %w", err)
	}
	return &LocalStore{dir: dir}, nil
}

func (s *LocalStore) path(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("media: bad key %q", key)
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Put writes through a temporary file and renames, so a crash never leaves
// a half-written file under the key.
func (s *LocalStore) Put(_ context.Context, key string, r io.Reader) (int64, error) {
	p, err := s.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, fmt.Errorf("media: mkdir: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return 0, fmt.Errorf("media: temp file: %w", err)
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, fmt.Errorf("media: write %s: %w", key, err)
	}
	return n, nil
}

func (s *LocalStore) Open(_ context.Context, key string) (io.ReadSeekCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("media: open %s: %w", key, err)
	}
	return f, nil
}

func (s *LocalStore) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("media: delete %s: %w", key, err)
	}
	return nil
}

// Signer makes and checks expiring links: /media/{id}?exp=…&sig=…
type Signer struct {
	key  []byte
	base string
	ttl  time.Duration
	now  func() time.Time
}

// NewSigner derives its own key from the gateway secret so a leaked media
// signature says nothing about the key that seals tokens.
func NewSigner(secretKey []byte, publicURL string, ttl time.Duration) *Signer {
	m := hmac.New(sha256.New, secretKey)
	m.Write([]byte("switchboard media url v1"))
	return &Signer{key: m.Sum(nil), base: strings.TrimRight(publicURL, "/"), ttl: ttl, now: time.Now}
}

func (s *Signer) sig(id string, exp int64) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id + "\x00" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// URL returns the public link to a file, valid for the signer's TTL.
func (s *Signer) URL(id string) string {
	exp := s.now().Add(s.ttl).Unix()
	return fmt.Sprintf("%s/media/%s?exp=%d&sig=%s", s.base, url.PathEscape(id), exp, s.sig(id, exp))
}

// Errors from Verify, distinct so the handler can answer 403 or 410.
var (
	ErrBadSignature = errors.New("media: bad signature")
	ErrExpired      = errors.New("media: link expired")
)

// Verify checks a link's exp and sig for id.
func (s *Signer) Verify(id, exp, sig string) error {
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if !hmac.Equal([]byte(sig), []byte(s.sig(id, e))) {
		return ErrBadSignature
	}
	if s.now().Unix() > e {
		return ErrExpired
	}
	return nil
}

// SetClock replaces the signer's clock, for tests.
func (s *Signer) SetClock(now func() time.Time) { s.now = now }

// Limits are Meta's post-processing size limits per kind of file.
var Limits = map[string]int64{
	"image":    5 << 20,
	"audio":    16 << 20,
	"voice":    16 << 20,
	"video":    16 << 20,
	"document": 100 << 20,
	"sticker":  500 << 10,
}
