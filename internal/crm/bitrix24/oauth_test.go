package bitrix24

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuthCodeURL(t *testing.T) {
	o := OAuthConfig{ClientID: testClientID, ClientSecret: testClientSecret}
	tests := []struct {
		domain, redirect, want string
	}{
		{"example.bitrix24.ru", "", "https://example.bitrix24.ru/oauth/authorize/?client_id=" + testClientID + "&response_type=code&state=st-1"},
		{"https://example.bitrix24.ru/", "", "https://example.bitrix24.ru/oauth/authorize/?client_id=" + testClientID + "&response_type=code&state=st-1"},
		{"http://127.0.0.1:8080", "", "http://127.0.0.1:8080/oauth/authorize/?client_id=" + testClientID + "&response_type=code&state=st-1"},
		{"example.bitrix24.ru/evil?x=1", "", "https://example.bitrix24.ru/oauth/authorize/?client_id=" + testClientID + "&response_type=code&state=st-1"},
		{"example.bitrix24.ru", "https://gw.example.com/cb",
			"https://example.bitrix24.ru/oauth/authorize/?client_id=" + testClientID + "&redirect_uri=https%3A%2F%2Fgw.example.com%2Fcb&response_type=code&state=st-1"},
		{"", "", ""},
		{"evil@example.bitrix24.ru", "", ""},
	}
	for _, tt := range tests {
		o.RedirectURL = tt.redirect
		if got := o.AuthCodeURL(tt.domain, "st-1"); got != tt.want {
			t.Errorf("AuthCodeURL(%q) = %q, want %q", tt.domain, got, tt.want)
		}
	}
	if strings.Contains(o.AuthCodeURL("example.bitrix24.ru", "s"), testClientSecret) {
		t.Error("the authorize URL carries the client secret")
	}
}

// tokenServer records token requests and answers with body.
type tokenServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	form []url.Values // query (GET) or form (POST)
}

func newTokenServer(t *testing.T, status int, ctype, body string) *tokenServer {
	ts := &tokenServer{}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		v := r.URL.Query()
		if r.Method == http.MethodPost {
			v, _ = url.ParseQuery(string(raw))
		}
		ts.mu.Lock()
		ts.reqs = append(ts.reqs, r)
		ts.form = append(ts.form, v)
		ts.mu.Unlock()
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) config() OAuthConfig {
	return OAuthConfig{ClientID: testClientID, ClientSecret: testClientSecret, AuthServerURL: ts.srv.URL + "/", AllowInsecure: true}
}

func TestExchange(t *testing.T) {
	ts := newTokenServer(t, 200, "application/json", string(fixture(t, "oauth-token-authorization-code-response.json")))
	tok, err := ts.config().Exchange(context.Background(), nil, "code-123")
	if err != nil {
		t.Fatal(err)
	}
	r, v := ts.reqs[0], ts.form[0]
	if r.Method != http.MethodGet || r.URL.Path != "/oauth/token/" {
		t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	want := url.Values{"grant_type": {"authorization_code"}, "code": {"code-123"}, "client_id": {testClientID}, "client_secret": {testClientSecret}}
	for k, w := range want {
		if v.Get(k) != w[0] {
			t.Errorf("%s = %q, want %q", k, v.Get(k), w[0])
		}
	}
	if r.Header.Get("Authorization") != "" {
		t.Error("credentials sent in a header as well")
	}
	wantTok := Token{
		AccessToken:    "e5a1b06700738a2b0062d5a900000001f0f107a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
		RefreshToken:   "f4b0c16700738a2b0062d5a900000001f0f107b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7",
		MemberID:       testMemberID,
		ClientEndpoint: "https://example.bitrix24.ru/rest/",
		ServerEndpoint: "https://oauth.bitrix.info/rest/",
		Domain:         "example.bitrix24.ru",
		Scope:          "crm,imopenlines,imconnector,im,user,department,placement,contact_center",
		Status:         "P",
		UserID:         "1",
	}
	got := *tok
	got.Expiry = time.Time{}
	if got != wantTok {
		t.Errorf("token = %+v\nwant    %+v", got, wantTok)
	}
	if d := time.Until(tok.Expiry); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expiry in %v", d)
	}
}

func TestRefresh(t *testing.T) {
	ts := newTokenServer(t, 200, "application/json; charset=utf-8", string(fixture(t, "oauth-token-refresh-response.json")))
	tok, err := ts.config().Refresh(context.Background(), &http.Client{}, "old-refresh")
	if err != nil {
		t.Fatal(err)
	}
	v := ts.form[0]
	if v.Get("grant_type") != "refresh_token" || v.Get("refresh_token") != "old-refresh" ||
		v.Get("client_id") != testClientID || v.Get("client_secret") != testClientSecret {
		t.Errorf("params = %v", v)
	}
	if tok.RefreshToken != "1b2c3d6700738a2b0062d5a900000001f0f107d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9" ||
		tok.AccessToken != "0a9f8e6700738a2b0062d5a900000001f0f107c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8" ||
		tok.MemberID != testMemberID || tok.UserID != "1" {
		t.Errorf("token = %+v", tok)
	}
}

func TestTokenRequestPOSTAndTextPlain(t *testing.T) {
	// A JSON answer labelled text/plain is still read as JSON.
	ts := newTokenServer(t, 200, "text/plain", string(fixture(t, "oauth-token-refresh-response.json")))
	o := ts.config()
	o.TokenRequestPOST = true
	tok, err := o.Refresh(context.Background(), nil, "old-refresh")
	if err != nil {
		t.Fatal(err)
	}
	if ts.reqs[0].Method != http.MethodPost || ts.form[0].Get("client_secret") != testClientSecret || ts.reqs[0].URL.RawQuery != "" {
		t.Errorf("request %s ?%s form %v", ts.reqs[0].Method, ts.reqs[0].URL.RawQuery, ts.form[0])
	}
	if tok.ClientEndpoint != "https://example.bitrix24.ru/rest/" {
		t.Errorf("token = %+v", tok)
	}
}

func TestOAuthErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		code   string
		reauth bool
	}{
		{"invalid_grant", 400, "application/json", string(fixture(t, "oauth-token-error-invalid-grant.json")), "invalid_grant", true},
		{"payment_required 402", 402, "application/json", string(fixture(t, "oauth-token-error-payment-required.json")), "PAYMENT_REQUIRED", true},
		{"payment_required 200", 200, "application/json", string(fixture(t, "oauth-token-error-payment-required.json")), "PAYMENT_REQUIRED", true},
		{"invalid_client", 401, "application/json", `{"error":"invalid_client","error_description":"Invalid client"}`, "invalid_client", true},
		{"wrong_client", 400, "application/json", `{"error":"wrong_client"}`, "wrong_client", true},
		{"invalid_scope", 400, "application/json", `{"error":"invalid_scope"}`, "invalid_scope", false},
		{"html 500", 500, "text/html", "<html>oops " + testClientSecret + "</html>", "", false},
		{"redirect not followed", 302, "text/html", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.status, tt.ctype, tt.body)
			_, err := ts.config().Refresh(context.Background(), nil, "old-refresh")
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tt.code || ae.HTTPStatus != tt.status {
				t.Fatalf("err = %v (%+v)", err, ae)
			}
			if errors.Is(err, ErrNeedsReauth) != tt.reauth || IsReauthRequired(err) != tt.reauth {
				t.Errorf("reauth = %v", errors.Is(err, ErrNeedsReauth))
			}
			for _, secret := range []string{testClientSecret, "old-refresh"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks %q: %v", secret, err)
				}
			}
			if len(ts.reqs) != 1 {
				t.Errorf("%d requests", len(ts.reqs))
			}
		})
	}
}

func TestOAuthTransportErrorHidesSecret(t *testing.T) {
	ts := newTokenServer(t, 200, "application/json", "{}")
	o := ts.config()
	ts.srv.Close()
	_, err := o.Refresh(context.Background(), nil, "old-refresh")
	if err == nil {
		t.Fatal("no error")
	}
	for _, secret := range []string{testClientSecret, "old-refresh", "client_secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks %q: %v", secret, err)
		}
	}
}

func TestOAuthValidatesEndpointAndServer(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		insecure bool
		exchange bool
		ok       bool
	}{
		{"http endpoint refused", `{"access_token":"a","refresh_token":"r","expires_in":3600,"client_endpoint":"http://example.bitrix24.ru/rest/"}`, false, false, false},
		{"http endpoint in tests", `{"access_token":"a","refresh_token":"r","expires_in":3600,"client_endpoint":"http://127.0.0.1/rest/"}`, true, false, true},
		{"not /rest/", `{"access_token":"a","refresh_token":"r","expires_in":3600,"client_endpoint":"https://example.bitrix24.ru/api/"}`, false, false, false},
		{"refresh without endpoint", `{"access_token":"a","refresh_token":"r","expires_in":3600}`, false, false, true},
		{"exchange without endpoint", `{"access_token":"a","refresh_token":"r","expires_in":3600}`, false, true, false},
		{"exchange with endpoint", `{"access_token":"a","refresh_token":"r","expires_in":3600,"client_endpoint":"https://example.bitrix24.ru/rest/"}`, false, true, true},
		{"no access token", `{"refresh_token":"r","client_endpoint":"https://example.bitrix24.ru/rest/"}`, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, tt.body)
			}))
			defer srv.Close()
			o := OAuthConfig{ClientID: testClientID, ClientSecret: testClientSecret, AuthServerURL: srv.URL, AllowInsecure: tt.insecure}
			var err error
			if tt.exchange {
				_, err = o.Exchange(context.Background(), srv.Client(), "c")
			} else {
				_, err = o.Refresh(context.Background(), srv.Client(), "rt")
			}
			if (err == nil) != tt.ok {
				t.Errorf("err = %v", err)
			}
		})
	}

	// The client secret never goes to a plain-http auth server unless allowed.
	ts := newTokenServer(t, 200, "application/json", "{}")
	o := ts.config()
	o.AllowInsecure = false
	if _, err := o.Refresh(context.Background(), nil, "rt"); err == nil || len(ts.reqs) != 0 {
		t.Errorf("http auth server: err = %v, %d requests", err, len(ts.reqs))
	}
	if _, err := (OAuthConfig{AuthServerURL: ts.srv.URL, AllowInsecure: true}).Exchange(context.Background(), nil, "c"); err == nil {
		t.Error("no client credentials accepted")
	}
}

func TestValidateClientEndpoint(t *testing.T) {
	tests := []struct {
		raw      string
		insecure bool
		ok       bool
	}{
		{"https://example.bitrix24.ru/rest/", false, true},
		{"https://example.bitrix24.ru:8443/rest/", false, true},
		{"http://127.0.0.1:9000/rest/", true, true},
		{"http://example.bitrix24.ru/rest/", false, false},
		{"https://example.bitrix24.ru/rest", false, false},
		{"https://example.bitrix24.ru/", false, false},
		{"https://user:pw@example.bitrix24.ru/rest/", false, false},
		{"https://example.bitrix24.ru/rest/?auth=x", false, false},
		{"https://example.bitrix24.ru/rest/#x", false, false},
		{"ftp://example.bitrix24.ru/rest/", true, false},
		{"//example.bitrix24.ru/rest/", false, false},
		{"", false, false},
		{"https:///rest/", false, false},
	}
	for _, tt := range tests {
		err := ValidateClientEndpoint(tt.raw, tt.insecure)
		if (err == nil) != tt.ok {
			t.Errorf("%q (insecure=%v): %v", tt.raw, tt.insecure, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("%q: error does not wrap ErrInvalidEndpoint", tt.raw)
		}
	}
}
