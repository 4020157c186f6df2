package amocrm

import (
	"context"
	"fmt"
	"sync"
)

// MemoryTokens is a TokenSource kept in memory, for tests, the simulator's
// demo and single-process tools. It shows what the gateway's stored one
// must do: one refresh per account at a time, the rotated pair stored
// before the new access token is handed out, a refresh skipped when
// another caller already replaced the failed token.
type MemoryTokens struct {
	client *Client
	// OnRotate, when set, is told of every new pair before it is used
	// (where a persistent source writes it down).
	OnRotate func(accountID string, t Token)

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	toks  map[string]memEntry
}

type memEntry struct {
	host string
	tok  Token
}

// NewMemoryTokens refreshes through c.
func NewMemoryTokens(c *Client) *MemoryTokens {
	return &MemoryTokens{client: c, locks: map[string]*sync.Mutex{}, toks: map[string]memEntry{}}
}

// Put stores an account's tokens; t.RefreshToken empty is a long-lived
// token, which cannot be refreshed.
func (m *MemoryTokens) Put(accountID, host string, t Token) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.toks[accountID] = memEntry{host: host, tok: t}
}

// Get returns an account's tokens.
func (m *MemoryTokens) Get(accountID string) (Token, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.toks[accountID]
	return e.tok, ok
}

// AccessToken implements TokenSource.
func (m *MemoryTokens) AccessToken(_ context.Context, accountID string) (string, error) {
	t, ok := m.Get(accountID)
	if !ok {
		return "", fmt.Errorf("amocrm: no tokens for %s", accountID)
	}
	return t.AccessToken, nil
}

// Refresh implements TokenSource.
func (m *MemoryTokens) Refresh(ctx context.Context, accountID, failed string) (string, error) {
	m.mu.Lock()
	l, ok := m.locks[accountID]
	if !ok {
		l = &sync.Mutex{}
		m.locks[accountID] = l
	}
	m.mu.Unlock()
	l.Lock()
	defer l.Unlock()

	m.mu.Lock()
	e, ok := m.toks[accountID]
	m.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("amocrm: no tokens for %s", accountID)
	}
	if e.tok.AccessToken != failed {
		return e.tok.AccessToken, nil // someone refreshed while we waited
	}
	// Detached: once amoCRM rotated the pair, it must be stored even if
	// the caller gave up.
	t, err := m.client.Refresh(context.WithoutCancel(ctx), e.host, e.tok.RefreshToken)
	if err != nil {
		return "", err
	}
	if m.OnRotate != nil {
		m.OnRotate(accountID, *t)
	}
	m.Put(accountID, e.host, *t)
	return t.AccessToken, nil
}
