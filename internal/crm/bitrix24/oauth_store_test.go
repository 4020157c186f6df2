package bitrix24

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMemoryTokenStore(t *testing.T) {
	ctx := context.Background()
	var s MemoryTokenStore // the zero value works
	if _, err := s.Credentials(ctx, "x"); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("unknown: %v", err)
	}
	s.Put(Credentials{IntegrationID: "x", AccessToken: "a1", RefreshToken: "r1"})

	boom := errors.New("boom")
	if _, err := s.RefreshLocked(ctx, "x", func(cur Credentials) (Credentials, error) {
		cur.AccessToken = "half-done"
		return cur, boom
	}); !errors.Is(err, boom) {
		t.Errorf("fn error: %v", err)
	}
	if c, _ := s.Credentials(ctx, "x"); c.AccessToken != "a1" {
		t.Errorf("failed refresh persisted: %+v", c)
	}

	got, err := s.RefreshLocked(ctx, "x", func(cur Credentials) (Credentials, error) {
		if cur.AccessToken != "a1" {
			t.Errorf("cur = %+v", cur)
		}
		cur.AccessToken, cur.RefreshToken = "a2", "r2"
		return cur, nil
	})
	if err != nil || got.AccessToken != "a2" {
		t.Fatalf("%+v, %v", got, err)
	}
	c, _ := s.Credentials(ctx, "x")
	if c.RefreshToken != "r2" || c.Version <= 0 || c.IntegrationID != "x" {
		t.Errorf("stored %+v", c)
	}

	if marked, err := s.MarkNeedsReauth(ctx, "x", c.Version-1, "invalid_grant"); err != nil || marked {
		t.Fatalf("a mark of replaced credentials: marked %v, %v", marked, err)
	}
	if _, err := s.Credentials(ctx, "x"); err != nil {
		t.Fatalf("credentials after a stale mark: %v", err)
	}
	if marked, err := s.MarkNeedsReauth(ctx, "x", c.Version, "invalid_grant"); err != nil || !marked {
		t.Fatalf("a mark of the stored credentials: marked %v, %v", marked, err)
	}
	if _, err := s.Credentials(ctx, "x"); !errors.Is(err, ErrNeedsReauth) {
		t.Errorf("marked: %v", err)
	}
	if _, err := s.RefreshLocked(ctx, "x", func(cur Credentials) (Credentials, error) {
		t.Error("fn ran for a marked integration")
		return cur, nil
	}); !errors.Is(err, ErrNeedsReauth) {
		t.Errorf("marked refresh: %v", err)
	}
	s.Put(Credentials{IntegrationID: "x", AccessToken: "a3", RefreshToken: "r3"})
	if c, err := s.Credentials(ctx, "x"); err != nil || c.AccessToken != "a3" || c.Version <= got.Version {
		t.Errorf("reinstall: %+v, %v", c, err)
	}
}

func TestMemoryTokenStoreLockHonoursContext(t *testing.T) {
	s := NewMemoryTokenStore()
	s.Put(Credentials{IntegrationID: "x", AccessToken: "a"})
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.RefreshLocked(context.Background(), "x", func(cur Credentials) (Credentials, error) {
			close(holding)
			<-release
			return cur, nil
		})
	}()
	<-holding
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.RefreshLocked(ctx, "x", func(cur Credentials) (Credentials, error) { return cur, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	// Another integration is not blocked.
	s.Put(Credentials{IntegrationID: "y", AccessToken: "b"})
	if _, err := s.RefreshLocked(context.Background(), "y", func(cur Credentials) (Credentials, error) { return cur, nil }); err != nil {
		t.Error(err)
	}
	close(release)
	<-done
}
