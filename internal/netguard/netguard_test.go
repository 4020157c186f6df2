package netguard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestAllowed(t *testing.T) {
	cases := map[string]bool{
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "::1": false, "fc00::1": false, "100.64.0.1": false,
		"0.0.0.0": false, "::ffff:127.0.0.1": false, "224.0.0.1": false,
		"8.8.8.8": true, "157.240.0.1": true, "2a03:2880::1": true,
	}
	for s, want := range cases {
		if got := Allowed(netip.MustParseAddr(s)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestClientRefusesLoopbackUnlessAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("inside")) }))
	defer srv.Close()
	_, err := NewClient(5*time.Second, false).Get(srv.URL)
	if !errors.Is(err, ErrPrivateAddress) {
		t.Fatalf("guarded client reached loopback: err=%v", err)
	}
	resp, err := NewClient(5*time.Second, true).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed client: %v", err)
	}
	resp.Body.Close()
}

func TestCheckHostRefusesLoopbackNames(t *testing.T) {
	if err := CheckHost(context.Background(), "localhost"); !errors.Is(err, ErrPrivateAddress) {
		t.Fatalf("CheckHost(localhost) = %v", err)
	}
}
