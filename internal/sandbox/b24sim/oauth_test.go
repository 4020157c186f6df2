package b24sim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func refreshQuery(refresh string) url.Values {
	return url.Values{
		"grant_type": {"refresh_token"}, "client_id": {testClientID},
		"client_secret": {testSecret}, "refresh_token": {refresh},
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})

	r := env.token(t, http.MethodGet, refreshQuery(env.refresh))
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	assertSameShape(t, r.raw, "oauth-token-refresh-response.json")
	newAccess, newRefresh := r.body["access_token"].(string), r.body["refresh_token"].(string)
	if newRefresh == env.refresh || newAccess == env.access || len(newAccess) != 70 {
		t.Errorf("tokens not rotated: %s", r.raw)
	}
	if r.body["domain"] != OAuthDomain || r.body["member_id"] != testMemberID || r.body["expires_in"] != float64(3600) ||
		r.body["client_endpoint"] != env.srv.URL+"/rest/" || r.body["user_id"] != float64(1) {
		t.Errorf("token response values: %s", r.raw)
	}
	if exp := int64(r.body["expires"].(float64)); exp != env.clock.Now().Add(time.Hour).Unix() {
		t.Errorf("expires = %d", exp)
	}

	// The old refresh token died with the first use.
	r = env.token(t, http.MethodGet, refreshQuery(env.refresh))
	if r.status != http.StatusBadRequest || r.errCode() != "invalid_grant" || r.body["error_description"] == "" {
		t.Errorf("reuse: %d %s", r.status, r.raw)
	}
	assertSameShape(t, r.raw, "oauth-token-error-invalid-grant.json")

	// The new access token works against client_endpoint; the new refresh
	// token works once, via POST form and HTTP Basic this time.
	env.ok(t, "app.info", nil)
	if r := env.rest(t, newAccess, "user.current", nil); r.status != 200 {
		t.Fatalf("new access token: %d %s", r.status, r.raw)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {newRefresh}}
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/oauth/token/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testSecret)
	if r := do(t, req); r.status != http.StatusOK {
		t.Fatalf("POST+Basic refresh: %d %s", r.status, r.raw)
	}

	// Wrong client credentials.
	q := refreshQuery("whatever")
	q.Set("client_secret", "wrong")
	if r := env.token(t, http.MethodGet, q); r.status != http.StatusUnauthorized || r.errCode() != "invalid_client" {
		t.Errorf("bad client: %d %s", r.status, r.raw)
	}
	if got := env.sim.TokenCalls("refresh_token"); got != 4 {
		t.Errorf("TokenCalls(refresh_token) = %d, want 4", got)
	}

	// Revoked refresh tokens mean re-authorization.
	_, rt := env.sim.InstallTokens(testMemberID)
	env.sim.RevokeRefreshTokens(testMemberID)
	if r := env.token(t, http.MethodGet, refreshQuery(rt)); r.errCode() != "invalid_grant" {
		t.Errorf("revoked: %d %s", r.status, r.raw)
	}
}

func TestRefreshTokenLifetime(t *testing.T) {
	env := newSim(t, Options{RefreshTTL: 28 * 24 * time.Hour}, PortalOptions{})
	env.clock.Advance(28*24*time.Hour + time.Second)
	if r := env.token(t, http.MethodGet, refreshQuery(env.refresh)); r.errCode() != "invalid_grant" {
		t.Errorf("expired refresh token: %d %s", r.status, r.raw)
	}
}

func TestAccessTokenExpiry(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	env.ok(t, "app.info", nil)

	env.clock.Advance(time.Hour)
	r := env.rest(t, env.access, "app.info", nil)
	if r.status != http.StatusUnauthorized {
		t.Errorf("expired: HTTP %d", r.status)
	}
	assertSameJSON(t, r.raw, "error-expired-token.json")

	r = env.rest(t, "0123456789abcdef", "app.info", nil)
	if r.status != http.StatusUnauthorized {
		t.Errorf("unknown token: HTTP %d", r.status)
	}
	assertSameJSON(t, r.raw, "error-invalid-token.json")
	r = env.rest(t, "", "app.info", nil)
	if r.status != http.StatusUnauthorized || r.errCode() != "NO_AUTH_FOUND" {
		t.Errorf("no auth: %d %s", r.status, r.raw)
	}

	// Refresh, then ExpireAccessTokens expires it on demand.
	r = env.token(t, http.MethodGet, refreshQuery(env.refresh))
	fresh := r.body["access_token"].(string)
	if r := env.rest(t, fresh, "app.info", nil); r.status != 200 {
		t.Fatalf("fresh token: %d %s", r.status, r.raw)
	}
	env.sim.ExpireAccessTokens(testMemberID)
	if r := env.rest(t, fresh, "app.info", nil); r.errCode() != "expired_token" {
		t.Errorf("ExpireAccessTokens: %d %s", r.status, r.raw)
	}
}

func TestPaymentRequired(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	env.sim.SetPaymentRequired(testMemberID, true)
	r := env.token(t, http.MethodGet, refreshQuery(env.refresh))
	if r.status != http.StatusPaymentRequired || r.errCode() != "PAYMENT_REQUIRED" {
		t.Errorf("token: %d %s", r.status, r.raw)
	}
	assertSameShape(t, r.raw, "oauth-token-error-payment-required.json")
	if r := env.rest(t, env.access, "app.info", nil); r.errCode() != "PAYMENT_REQUIRED" {
		t.Errorf("rest: %d %s", r.status, r.raw)
	}
	// After payment the same refresh token still works: it was not spent.
	env.sim.SetPaymentRequired(testMemberID, false)
	if r := env.token(t, http.MethodGet, refreshQuery(env.refresh)); r.status != 200 {
		t.Errorf("after payment: %d %s", r.status, r.raw)
	}
}

func TestAuthorizationCode(t *testing.T) {
	env := newSim(t, Options{RedirectURL: "https://connector.example.com/b24/oauth?x=1"}, PortalOptions{})
	exchange := func(code string) response {
		return env.token(t, http.MethodGet, url.Values{
			"grant_type": {"authorization_code"}, "client_id": {testClientID},
			"client_secret": {testSecret}, "code": {code},
		})
	}

	code := env.sim.IssueAuthCode(testMemberID)
	r := exchange(code)
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.status, r.raw)
	}
	assertSameShape(t, r.raw, "oauth-token-authorization-code-response.json")
	if r := exchange(code); r.errCode() != "invalid_grant" {
		t.Errorf("code reused: %d %s", r.status, r.raw)
	}

	code = env.sim.IssueAuthCode(testMemberID)
	env.clock.Advance(30 * time.Second)
	if r := exchange(code); r.status != http.StatusBadRequest || r.errCode() != "invalid_grant" {
		t.Errorf("code after 30 s: %d %s", r.status, r.raw)
	}
	code = env.sim.IssueAuthCode(testMemberID)
	env.clock.Advance(29 * time.Second)
	if r := exchange(code); r.status != http.StatusOK {
		t.Errorf("code after 29 s: %d %s", r.status, r.raw)
	}

	// The browser flow: /oauth/authorize/ redirects to the app card's URL.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(env.srv.URL + "/oauth/authorize/?client_id=" + testClientID + "&state=xyz&redirect_uri=https://evil.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Host != "connector.example.com" {
		t.Fatalf("authorize: %d %s", resp.StatusCode, loc)
	}
	q := loc.Query()
	if q.Get("state") != "xyz" || q.Get("domain") != testDomain || q.Get("member_id") != testMemberID ||
		q.Get("server_domain") != OAuthDomain || q.Get("scope") != DefaultScope || q.Get("x") != "1" {
		t.Errorf("redirect query: %s", loc.RawQuery)
	}
	if r := exchange(q.Get("code")); r.status != http.StatusOK {
		t.Errorf("redirect code: %d %s", r.status, r.raw)
	}
	if got := env.sim.TokenCalls("authorization_code"); got != 5 {
		t.Errorf("TokenCalls = %d", got)
	}
}
