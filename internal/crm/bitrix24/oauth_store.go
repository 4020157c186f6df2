package bitrix24

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNoCredentials is returned by MemoryTokenStore for an unknown
// integration.
var ErrNoCredentials = errors.New("bitrix24: no credentials for integration")

// Credentials is what a call needs for one portal (integration).
type Credentials struct {
	IntegrationID  string
	MemberID       string
	ClientEndpoint string
	AccessToken    string
	RefreshToken   string
	Expiry         time.Time
	// Version is bumped by the store on every write, so a writer can tell
	// that the row changed under it.
	Version int64
}

// TokenStore persists each integration's tokens and serialises refreshes.
//
// Bitrix24 rotates the refresh token on every refresh and the old one must
// be assumed spent, so two concurrent refreshes of one portal would leave
// one of them holding a dead token. Hence the lock must hold across
// goroutines and gateway instances (a row lock or advisory lock in the
// database), and the new pair must be written before it is released.
type TokenStore interface {
	// Credentials returns the stored credentials. For an integration marked
	// with MarkNeedsReauth it should return an error wrapping
	// ErrNeedsReauth, so calls fail fast instead of hammering the portal.
	Credentials(ctx context.Context, integrationID string) (Credentials, error)
	// RefreshLocked runs fn holding the integration's refresh lock (across
	// goroutines and gateway instances). fn receives the currently stored
	// credentials (re-read under the lock) and returns the new ones, which
	// RefreshLocked persists atomically (bumping Version) before releasing
	// the lock. When fn returns an error nothing is written and the error is
	// returned. When fn returns cur with the same tokens the write may be
	// skipped.
	RefreshLocked(ctx context.Context, integrationID string, fn func(cur Credentials) (Credentials, error)) (Credentials, error)
	// MarkNeedsReauth records that the portal's refresh token is dead,
	// unless newer credentials than version (the refused ones) were stored
	// meanwhile; it reports whether it marked.
	MarkNeedsReauth(ctx context.Context, integrationID string, version int64, reason string) (bool, error)
}

// MemoryTokenStore is a TokenStore in memory, for tests and single-process
// tools. The zero value is ready to use.
type MemoryTokenStore struct {
	mu     sync.Mutex
	creds  map[string]Credentials
	reauth map[string]string
	locks  map[string]chan struct{} // one-slot semaphores: a lock that a context can abandon
}

// NewMemoryTokenStore returns an empty store.
func NewMemoryTokenStore() *MemoryTokenStore { return &MemoryTokenStore{} }

// Put stores credentials (as an install does) and clears any needs-reauth
// mark.
func (s *MemoryTokenStore) Put(c Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if old, ok := s.creds[c.IntegrationID]; ok && c.Version <= old.Version {
		c.Version = old.Version + 1
	}
	s.creds[c.IntegrationID] = c
	delete(s.reauth, c.IntegrationID)
}

// SetEndpoint updates the client endpoint, as OnEndpointMoved would.
func (s *MemoryTokenStore) SetEndpoint(integrationID, endpoint string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	c, ok := s.creds[integrationID]
	if !ok {
		return fmt.Errorf("%w %s", ErrNoCredentials, integrationID)
	}
	c.ClientEndpoint = endpoint
	c.Version++
	s.creds[integrationID] = c
	return nil
}

// NeedsReauth reports whether MarkNeedsReauth was called, and why.
func (s *MemoryTokenStore) NeedsReauth(integrationID string) (reason string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reason, ok = s.reauth[integrationID]
	return reason, ok
}

func (s *MemoryTokenStore) init() {
	if s.creds == nil {
		s.creds = make(map[string]Credentials)
		s.reauth = make(map[string]string)
		s.locks = make(map[string]chan struct{})
	}
}

// Credentials implements TokenStore.
func (s *MemoryTokenStore) Credentials(_ context.Context, integrationID string) (Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if reason, ok := s.reauth[integrationID]; ok {
		return Credentials{}, fmt.Errorf("bitrix24: integration %s: %w (%s)", integrationID, ErrNeedsReauth, reason)
	}
	c, ok := s.creds[integrationID]
	if !ok {
		return Credentials{}, fmt.Errorf("%w %s", ErrNoCredentials, integrationID)
	}
	return c, nil
}

// RefreshLocked implements TokenStore.
func (s *MemoryTokenStore) RefreshLocked(ctx context.Context, integrationID string, fn func(cur Credentials) (Credentials, error)) (Credentials, error) {
	s.mu.Lock()
	s.init()
	lock, ok := s.locks[integrationID]
	if !ok {
		lock = make(chan struct{}, 1)
		s.locks[integrationID] = lock
	}
	s.mu.Unlock()

	select {
	case lock <- struct{}{}:
	case <-ctx.Done():
		return Credentials{}, ctx.Err()
	}
	defer func() { <-lock }()

	cur, err := s.Credentials(ctx, integrationID)
	if err != nil {
		return Credentials{}, err
	}
	next, err := fn(cur)
	if err != nil {
		return Credentials{}, err
	}
	if next.AccessToken == cur.AccessToken && next.RefreshToken == cur.RefreshToken {
		return cur, nil
	}
	next.IntegrationID = integrationID
	next.Version = cur.Version + 1

	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[integrationID] = next
	return next, nil
}

// MarkNeedsReauth implements TokenStore.
func (s *MemoryTokenStore) MarkNeedsReauth(_ context.Context, integrationID string, version int64, reason string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.creds[integrationID].Version != version {
		return false, nil
	}
	s.reauth[integrationID] = reason
	return true, nil
}
