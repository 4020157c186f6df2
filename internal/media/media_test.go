package media

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLocalStore(t *testing.T) {
	s, err := NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := s.Put(ctx, "ws/ch/file1", strings.NewReader("hello"))
	if err != nil || n != 5 {
		t.Fatalf("Put = %d, %v", n, err)
	}
	f, err := s.Open(ctx, "ws/ch/file1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "hello" {
		t.Fatalf("read %q", b)
	}
	if _, err := s.Open(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	for _, bad := range []string{"../etc/passwd", "/abs", ""} {
		if _, err := s.Put(ctx, bad, strings.NewReader("x")); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	if err := s.Delete(ctx, "ws/ch/file1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "ws/ch/file1"); !errors.Is(err, ErrNotFound) {
		t.Fatal("deleted file still there")
	}
}

func TestSigner(t *testing.T) {
	now := time.Unix(1767600000, 0)
	s := NewSigner([]byte("k"), "https://gw.example/", time.Hour)
	s.SetClock(func() time.Time { return now })
	u, err := url.Parse(s.URL("M1"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "gw.example" || u.Path != "/media/M1" {
		t.Fatalf("url %s", u)
	}
	q := u.Query()
	if err := s.Verify("M1", q.Get("exp"), q.Get("sig")); err != nil {
		t.Fatalf("fresh link refused: %v", err)
	}
	if err := s.Verify("M2", q.Get("exp"), q.Get("sig")); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("link for another file accepted: %v", err)
	}
	if err := s.Verify("M1", "9999999999", q.Get("sig")); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("extended expiry accepted: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if err := s.Verify("M1", q.Get("exp"), q.Get("sig")); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired link: %v", err)
	}
	other := NewSigner([]byte("other"), "https://gw.example", time.Hour)
	if err := other.Verify("M1", q.Get("exp"), q.Get("sig")); !errors.Is(err, ErrBadSignature) {
		t.Fatal("signature valid under another key")
	}
}
