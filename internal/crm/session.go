// Package crm holds what every CRM integration shares, so that a second
// CRM does not copy it from the first: for now the signed sessions of the
// pages a CRM shows inside its own interface.
package crm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Session is who opened a page inside a CRM, proven once by the CRM (its
// own authentication of the user) and carried on as a signed, expiring
// value: a third-party cookie in an iframe is not dependable. The JSON
// names are short because the value travels in every page's address.
type Session struct {
	IntegrationID string `json:"i"`
	UserID        string `json:"u"`
	Admin         bool   `json:"a"`
	Lang          string `json:"l"`
	// Entity is the CRM record a card tab was opened for ("deal:8061").
	Entity string `json:"e,omitempty"`
	// Auth is when the CRM itself last vouched for the user (unix
	// seconds). Renewals never move it, so a leaked session dies
	// SessionMaxAge after it, however often it is used.
	Auth    int64 `json:"t"`
	Expires int64 `json:"x"`
}

const (
	// SessionTTL is how long a page stays usable without a new view.
	SessionTTL = 2 * time.Hour
	// SessionMaxAge bounds a session from the CRM's own authentication:
	// a working day, after which the page must be opened again from the
	// CRM.
	SessionMaxAge = 8 * time.Hour
)

// ErrSessionExpired is a well-signed session past its time.
var ErrSessionExpired = errors.New("crm: page session expired")

// Sessions signs and opens page sessions with one key.
type Sessions struct {
	key []byte
}

// NewSessions signs with key (at least 32 random bytes).
func NewSessions(key []byte) *Sessions { return &Sessions{key: key} }

func (s *Sessions) mac(body string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sign renews a session for SessionTTL, but never past SessionMaxAge from
// its Auth.
func (s *Sessions) Sign(ss Session) string {
	ss.Expires = min(time.Now().Add(SessionTTL).Unix(), ss.Auth+int64(SessionMaxAge/time.Second))
	raw, err := json.Marshal(ss)
	if err != nil {
		// A struct of strings, bools and ints always marshals.
		panic(err)
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + s.mac(body)
}

// Open checks a session's signature and age. A genuine but expired
// session is returned with ErrSessionExpired, so that the refusal can be
// worded in its language.
func (s *Sessions) Open(v string) (*Session, error) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok {
		return nil, errors.New("crm: malformed session")
	}
	if !hmac.Equal([]byte(sig), []byte(s.mac(body))) {
		return nil, errors.New("crm: bad session signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("crm: session: %w", err)
	}
	var ss Session
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, fmt.Errorf("crm: session: %w", err)
	}
	now := time.Now().Unix()
	// Auth 0 is a session signed before Auth existed: it has no proven
	// start, so it gets no renewal.
	if now > ss.Expires || ss.Auth == 0 || now > ss.Auth+int64(SessionMaxAge/time.Second) {
		return &ss, ErrSessionExpired
	}
	return &ss, nil
}

// StreamTicket lets a CRM page's event stream say which of its customers'
// conversations changed. An EventSource can only GET, so the ticket
// travels in the stream's address; it is therefore not the page session
// (which can send and must stay out of addresses), but a narrower,
// shorter-lived value signed apart from sessions: it names the workspace
// and the customers the page showed its user, and opens nothing but the
// stream, which carries no content.
type StreamTicket struct {
	IntegrationID string   `json:"i"`
	WorkspaceID   string   `json:"w"`
	Contacts      []string `json:"c"`
	Expires       int64    `json:"x"`
}

// StreamTTL is how long a stream ticket opens streams; the page gets a
// new one with each refresh of its messages.
const StreamTTL = 15 * time.Minute

// streamDomain separates a ticket's signature from a session's: neither
// opens as the other.
const streamDomain = "stream\x00"

// SignStream signs a stream ticket for the page of session ss, valid for
// StreamTTL but never past the session's own end.
func (s *Sessions) SignStream(ss *Session, t StreamTicket) string {
	t.Expires = min(time.Now().Add(StreamTTL).Unix(), ss.Auth+int64(SessionMaxAge/time.Second))
	if t.Contacts == nil {
		t.Contacts = []string{}
	}
	raw, err := json.Marshal(t)
	if err != nil {
		// Strings and an int always marshal.
		panic(err)
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + s.mac(streamDomain+body)
}

// OpenStream checks a stream ticket's signature and age.
func (s *Sessions) OpenStream(v string) (*StreamTicket, error) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok {
		return nil, errors.New("crm: malformed stream ticket")
	}
	if !hmac.Equal([]byte(sig), []byte(s.mac(streamDomain+body))) {
		return nil, errors.New("crm: bad stream ticket signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("crm: stream ticket: %w", err)
	}
	var t StreamTicket
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("crm: stream ticket: %w", err)
	}
	if time.Now().Unix() > t.Expires || t.WorkspaceID == "" {
		return nil, ErrSessionExpired
	}
	return &t, nil
}
