package app_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

const (
	amoAdminUser   = 9000001
	amoManagerUser = 9000002
)

// amoToken mints the disposable token amoCRM gives the widget of user.
func amoToken(t *testing.T, e *apptest.Env, user int) string {
	t.Helper()
	tok, _, err := e.Amo.DisposableToken(amoAccount, user, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// widgetTicket posts the widget's ticket call as $authorizedAjax does,
// from the account's page (Origin), and returns the status, the decoded
// body and the headers.
func widgetTicket(t *testing.T, e *apptest.Env, token, purpose string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/amocrm/widget/ticket", strings.NewReader(url.Values{"purpose": {purpose}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.AmoURL)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("ticket answer %d is not JSON: %s", resp.StatusCode, b)
	}
	// A refusal's code and field are read like a ticket's fields.
	if ev, ok := out["error"].(map[string]any); ok {
		out = ev
	}
	return resp.StatusCode, out, resp.Header
}

// TestAmoCRMWidgetTicket: only a genuine, fresh disposable token of a
// connected account buys a ticket, and the answer is readable only by the
// account's own pages (CORS).
func TestAmoCRMWidgetTicket(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		// Before the install the account is unknown.
		if st, body, _ := widgetTicket(t, e, amoToken(t, e, amoAdminUser), "settings"); st != http.StatusNotFound || body["code"] != "account_unknown" {
			t.Fatalf("ticket before install: %d %v", st, body)
		}
		installAmoWidget(t, e)

		tok := amoToken(t, e, amoManagerUser)
		st, body, h := widgetTicket(t, e, tok, "card")
		if st != http.StatusOK || body["ticket"] == "" || body["expires_in"] != float64(120) {
			t.Fatalf("ticket: %d %v", st, body)
		}
		if h.Get("Access-Control-Allow-Origin") != e.AmoURL {
			t.Fatalf("CORS origin %q, want %q", h.Get("Access-Control-Allow-Origin"), e.AmoURL)
		}
		// The same token again: amoCRM's tokens are single use.
		if st, body, _ := widgetTicket(t, e, tok, "card"); st != http.StatusUnauthorized || body["code"] != "widget_token_invalid" {
			t.Fatalf("replayed token: %d %v", st, body)
		}

		// Forged: signed with another secret; tampered: a claim changed after
		// signing; expired; for another audience; none at all.
		fresh := amoToken(t, e, amoAdminUser)
		parts := strings.Split(fresh, ".")
		var claims amosim.DisposableClaims
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if err := json.Unmarshal(raw, &claims); err != nil {
			t.Fatal(err)
		}
		forged := amosim.SignDisposableToken(claims, "another-secret")
		other := claims
		other.AccountID = 31000000
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, other)) + "." + parts[2]
		old := claims
		old.Jti, old.Exp, old.Nbf, old.Iat = "expired-jti", time.Now().Add(-time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
		expired := amosim.SignDisposableToken(old, apptest.AmoSecret)
		aud := claims
		aud.Jti, aud.Aud = "aud-jti", "https://elsewhere.example.com"
		foreign := amosim.SignDisposableToken(aud, apptest.AmoSecret)
		for name, tok := range map[string]string{"forged": forged, "tampered": tampered, "expired": expired, "audience": foreign, "none": ""} {
			if st, body, _ := widgetTicket(t, e, tok, "settings"); st != http.StatusUnauthorized || body["code"] != "widget_token_invalid" || body["ticket"] != nil {
				t.Errorf("%s token: %d %v", name, st, body)
			}
		}
		// The genuine one still works, for a known purpose only.
		if st, body, _ := widgetTicket(t, e, amoToken(t, e, amoAdminUser), "everything"); st != http.StatusUnprocessableEntity && st != http.StatusBadRequest {
			t.Errorf("unknown purpose: %d %v", st, body)
		}
		if st, body, _ := widgetTicket(t, e, fresh, "settings"); st != http.StatusOK {
			t.Errorf("genuine token: %d %v", st, body)
		}

		// A page on another origin gets no CORS grant.
		req, _ := http.NewRequest(http.MethodOptions, e.URL+"/amocrm/widget/ticket", nil)
		req.Header.Set("Origin", "https://evil.example.com")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("foreign origin granted %q", got)
		}
		req.Header.Set("Origin", e.AmoURL)
		resp, err = e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "X-Auth-Token") || resp.Header.Get("Access-Control-Allow-Origin") != e.AmoURL {
			t.Errorf("preflight from the account: %v", resp.Header)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
