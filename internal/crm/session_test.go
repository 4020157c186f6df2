package crm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// forgeSession signs a session as it stands, with no renewal rules, the
// way an older gateway or a renewal a moment ago would have.
func forgeSession(t *testing.T, key []byte, ss Session) string {
	t.Helper()
	raw, err := json.Marshal(ss)
	if err != nil {
		t.Fatal(err)
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestSessionAbsoluteLifetime(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := NewSessions(key)
	now := time.Now()

	// Renewed a moment ago (expires in two hours), but the portal last
	// vouched for the user nine hours ago: refused.
	old := forgeSession(t, key, Session{IntegrationID: "i", Lang: "ru", Auth: now.Add(-9 * time.Hour).Unix(), Expires: now.Add(2 * time.Hour).Unix()})
	if _, err := s.Open(old); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("a session past its absolute lifetime opened: %v", err)
	}
	// A session without the portal's time (signed before it existed) is
	// not renewed either.
	legacy := forgeSession(t, key, Session{IntegrationID: "i", Lang: "ru", Expires: now.Add(2 * time.Hour).Unix()})
	if _, err := s.Open(legacy); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("a session with no authentication time opened: %v", err)
	}
	// Renewal never reaches past the absolute lifetime.
	auth := now.Add(-7*time.Hour - 30*time.Minute).Unix()
	ss, err := s.Open(s.Sign(Session{IntegrationID: "i", Auth: auth}))
	if err != nil {
		t.Fatal(err)
	}
	if want := auth + int64(SessionMaxAge/time.Second); ss.Expires != want {
		t.Fatalf("renewed until %d, want the absolute end %d", ss.Expires, want)
	}
	// A fresh one gets the usual two hours.
	ss, err = s.Open(s.Sign(Session{IntegrationID: "i", Auth: now.Unix()}))
	if err != nil || ss.Expires > now.Add(SessionTTL+time.Second).Unix() {
		t.Fatalf("fresh session: %+v %v", ss, err)
	}
}

// A session signed with another key, or changed after signing, is not a
// session at all (not merely expired).
func TestSessionForged(t *testing.T) {
	s := NewSessions([]byte("0123456789abcdef0123456789abcdef"))
	other := NewSessions([]byte("fedcba9876543210fedcba9876543210"))
	good := s.Sign(Session{IntegrationID: "i", Admin: false, Auth: time.Now().Unix()})
	for name, v := range map[string]string{
		"other key": other.Sign(Session{IntegrationID: "i", Auth: time.Now().Unix()}),
		"no dot":    "abc",
		"changed":   "x" + good,
	} {
		if ss, err := s.Open(v); err == nil || errors.Is(err, ErrSessionExpired) {
			t.Errorf("%s: opened %+v, %v", name, ss, err)
		}
	}
}

// A stream ticket opens only as a ticket, and a session only as a session:
// the one in an EventSource's address can never send.
func TestStreamTicketIsNotASession(t *testing.T) {
	s := NewSessions([]byte("0123456789abcdef0123456789abcdef"))
	ss := &Session{IntegrationID: "in", UserID: "7", Auth: time.Now().Unix()}
	tk := s.SignStream(ss, StreamTicket{IntegrationID: "in", WorkspaceID: "ws", Contacts: []string{"c1"}})
	got, err := s.OpenStream(tk)
	if err != nil || got.WorkspaceID != "ws" || len(got.Contacts) != 1 || got.Contacts[0] != "c1" {
		t.Fatalf("ticket: %+v %v", got, err)
	}
	if time.Until(time.Unix(got.Expires, 0)) > StreamTTL {
		t.Fatalf("ticket lives past StreamTTL: %v", time.Unix(got.Expires, 0))
	}
	if _, err := s.Open(tk); err == nil {
		t.Fatal("a stream ticket opened as a page session")
	}
	if _, err := s.OpenStream(s.Sign(*ss)); err == nil {
		t.Fatal("a page session opened as a stream ticket")
	}
	if _, err := NewSessions([]byte("another key, 32 bytes long......")).OpenStream(tk); err == nil {
		t.Fatal("a ticket of another key opened")
	}
	// Never past the session's own end.
	old := &Session{Auth: time.Now().Add(-SessionMaxAge - time.Minute).Unix()}
	if _, err := s.OpenStream(s.SignStream(old, StreamTicket{WorkspaceID: "ws"})); err == nil {
		t.Fatal("a ticket outlived its session")
	}
}
