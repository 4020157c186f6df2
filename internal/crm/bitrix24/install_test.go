package bitrix24

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// Answers to install and OAuth callers name neither our addresses nor Go
// types; the log keeps the detail for the operator (S6).
func TestInstallErrorsHideInternals(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now: the dial fails
	var logs bytes.Buffer
	s := &Service{cfg: Config{}, http: &http.Client{}, log: slog.New(slog.NewTextHandler(&logs, nil)),
		oauth: OAuthConfig{ClientID: "app.x", ClientSecret: "s", AuthServerURL: closed, AllowInsecure: true}}
	leaks := []string{"127.0.0.1", "dial tcp", "netguard", "connection refused", "*url.Error", "private"}
	check := func(name string, err error, status int, code string) {
		t.Helper()
		var he *fault.Error
		if !errors.As(err, &he) || httperr.Status(he.Kind) != status || he.Code != code {
			t.Fatalf("%s: %#v, want %d %s", name, err, status, code)
		}
		for _, l := range leaks {
			if strings.Contains(he.Message, l) {
				t.Errorf("%s: answer %q tells outsiders %q", name, he.Message, l)
			}
		}
	}
	_, err = s.install(context.Background(), "refresh", "", "app", "", "ru", "")
	check("OAuth server down", err, http.StatusBadGateway, "oauth_unavailable")
	check("loopback endpoint", s.checkEndpoint(context.Background(), "https://127.0.0.1:8443/rest/"), http.StatusForbidden, "endpoint_not_allowed")
	if !strings.Contains(logs.String(), "127.0.0.1") {
		t.Errorf("the log lost the detail: %s", logs.String())
	}
}
