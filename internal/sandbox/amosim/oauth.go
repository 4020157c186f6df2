package amosim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type accessToken struct {
	accountID int
	userID    int
	expires   time.Time
	longLived bool
	revoked   bool
}

type refreshToken struct {
	accountID int
	userID    int
	expires   time.Time
	used      bool
	revoked   bool
}

type authCode struct {
	accountID int
	userID    int
	expires   time.Time
	used      bool
}

// OAuth refusal hints observed from amoCRM (contract §1.3).
const (
	HintCodeExpired   = "Authorization code has expired"
	HintCodeRevoked   = "Authorization code has been revoked"
	HintCodeUnknown   = "Cannot decrypt the authorization code"
	HintTokenRevoked  = "Token has been revoked"
	HintTokenExpired  = "Token has expired"
	HintTokenInvalid  = "Cannot decrypt the refresh token"
	HintClient        = "Client authentication failed"
	HintRedirect      = "Redirect URI mismatch"
	HintMissingParams = "Check the `grant_type` parameter"
)

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("amosim: random: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// IssueCode returns a fresh authorization code for the account, as amoCRM
// hands one to the Redirect URI when an admin installs the widget.
func (s *Server) IssueCode(accountID int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		return "", fmt.Errorf("amosim: no account %d", accountID)
	}
	code := "def50200" + randomHex(60)
	s.codes[code] = &authCode{accountID: accountID, userID: a.installer, expires: s.clock().Add(s.opts.CodeTTL)}
	return code, nil
}

// InstallRedirect returns the query amoCRM sends to the Redirect URI when
// the widget is installed: code, referer, platform and from_widget.
func (s *Server) InstallRedirect(accountID int) (url.Values, error) {
	code, err := s.IssueCode(accountID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	ref := s.opts.Referer
	if ref == "" {
		ref = a.spec.Domain
	}
	platform := "1"
	if !strings.HasSuffix(a.spec.Domain, ".amocrm.ru") {
		platform = "2"
	}
	return url.Values{"code": {code}, "referer": {ref}, "platform": {platform}, "from_widget": {"1"}}, nil
}

// SetReferer sets the host install redirects give as referer (see
// Options.Referer); tests call it with the httptest server's host.
func (s *Server) SetReferer(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Referer = host
}

// LongLivedToken issues a long-lived token (no refresh token) valid for
// ttl, as an admin generates on the integration's keys tab.
func (s *Server) LongLivedToken(accountID int, ttl time.Duration) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		return "", fmt.Errorf("amosim: no account %d", accountID)
	}
	tok := s.newAccessLocked(a, a.installer, ttl)
	s.access[tok].longLived = true
	return tok, nil
}

// RevokeTokens kills every token of the account, as uninstalling the
// integration does: API calls get 401, refreshes 400.
func (s *Server) RevokeTokens(accountID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.access {
		if t.accountID == accountID {
			t.revoked = true
		}
	}
	for _, t := range s.refresh {
		if t.accountID == accountID {
			t.revoked = true
		}
	}
}

// ExpireAccessTokens makes the account's current access tokens expired
// without moving the clock.
func (s *Server) ExpireAccessTokens(accountID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.clock().Add(-time.Second)
	for _, t := range s.access {
		if t.accountID == accountID {
			t.expires = past
		}
	}
}

// newAccessLocked mints an access token shaped like amoCRM's (a JWT whose
// signature nobody can check) carrying the usual claims.
func (s *Server) newAccessLocked(a *account, userID int, ttl time.Duration) string {
	now := s.clock()
	header := b64json(map[string]any{"typ": "JWT", "alg": "RS256", "jti": randomHex(20)})
	claims := b64json(map[string]any{
		"aud": s.opts.ClientID, "jti": randomHex(20), "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(), "sub": strconv.Itoa(userID), "account_id": a.spec.ID,
		"base_domain": baseDomain(a.spec.Domain), "api_domain": "api-b." + baseDomain(a.spec.Domain),
		"scopes": []string{"crm", "notifications"}, "version": 2,
	})
	tok := header + "." + claims + "." + base64.RawURLEncoding.EncodeToString([]byte("amosim-"+randomHex(16)))
	s.access[tok] = &accessToken{accountID: a.spec.ID, userID: userID, expires: now.Add(ttl)}
	return tok
}

func baseDomain(domain string) string {
	if i := strings.IndexByte(domain, '.'); i >= 0 {
		return domain[i+1:]
	}
	return domain
}

func b64json(v any) string { return base64.RawURLEncoding.EncodeToString(mustJSON(v)) }

// oauthProblem is the token endpoint's refusal (fixtures
// oauth_token_error_*.json): the same title and detail for every cause,
// the cause in "hint".
func oauthProblem(status int, hint string) *Problem {
	return &Problem{Status: status, Hint: hint, Title: "Некорректный запрос",
		Type:   "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
		Detail: "В запросе отсутствует ряд параметров или параметры невалидны"}
}

type tokenRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	GrantType    string `json:"grant_type"`
	Code         string `json:"code"`
	RefreshToken string `json:"refresh_token"`
	RedirectURI  string `json:"redirect_uri"`
}

// handleToken is POST /oauth2/access_token. JSON is the documented body;
// a form body is accepted too, as the generic OAuth client of the official
// SDK sends one (contract §1.3).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			s.refuseToken(w, http.StatusBadRequest, HintMissingParams)
			return
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			s.refuseToken(w, http.StatusBadRequest, HintMissingParams)
			return
		}
		req = tokenRequest{ClientID: r.PostForm.Get("client_id"), ClientSecret: r.PostForm.Get("client_secret"),
			GrantType: r.PostForm.Get("grant_type"), Code: r.PostForm.Get("code"),
			RefreshToken: r.PostForm.Get("refresh_token"), RedirectURI: r.PostForm.Get("redirect_uri")}
	default:
		s.refuseToken(w, http.StatusBadRequest, HintMissingParams)
		return
	}
	if s.opts.ClientID != "" {
		if req.ClientID != s.opts.ClientID || !hmac.Equal([]byte(req.ClientSecret), []byte(s.opts.ClientSecret)) {
			s.refuseToken(w, http.StatusUnauthorized, HintClient)
			return
		}
		if s.opts.RedirectURI != "" && req.RedirectURI != s.opts.RedirectURI {
			s.refuseToken(w, http.StatusBadRequest, HintRedirect)
			return
		}
	}
	now := s.clock()
	s.mu.Lock()
	var accountID, userID int
	switch req.GrantType {
	case "authorization_code":
		c := s.codes[req.Code]
		switch {
		case c == nil:
			s.mu.Unlock()
			s.refuseToken(w, http.StatusBadRequest, HintCodeUnknown)
			return
		case c.used:
			s.mu.Unlock()
			s.refuseToken(w, http.StatusBadRequest, HintCodeRevoked)
			return
		case !now.Before(c.expires):
			s.mu.Unlock()
			s.refuseToken(w, http.StatusBadRequest, HintCodeExpired)
			return
		}
		c.used = true
		accountID, userID = c.accountID, c.userID
	case "refresh_token":
		t := s.refresh[req.RefreshToken]
		switch {
		case t == nil:
			s.mu.Unlock()
			s.refuseToken(w, http.StatusBadRequest, HintTokenInvalid)
			return
		case t.used || t.revoked:
			s.mu.Unlock()
			s.refuseToken(w, http.StatusBadRequest, HintTokenRevoked)
			return
		case !now.Before(t.expires):
			s.mu.Unlock()
			s.refuseToken(w, http.StatusBadRequest, HintTokenExpired)
			return
		}
		t.used = true // single use: dead the moment it is spent
		accountID, userID = t.accountID, t.userID
	default:
		s.mu.Unlock()
		s.refuseToken(w, http.StatusBadRequest, HintMissingParams)
		return
	}
	a := s.accounts[accountID]
	if a == nil {
		s.mu.Unlock()
		s.refuseToken(w, http.StatusBadRequest, HintTokenRevoked)
		return
	}
	noteAccount(r, accountID)
	access := s.newAccessLocked(a, userID, s.opts.AccessTTL)
	refresh := "def50200" + randomHex(360) // amoCRM's are ~700+ characters
	s.refresh[refresh] = &refreshToken{accountID: accountID, userID: userID, expires: now.Add(s.opts.RefreshTTL)}
	s.oauthN[req.GrantType]++
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Write(mustJSON(struct {
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		ServerTime   int64  `json:"server_time"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}{"Bearer", int(s.opts.AccessTTL / time.Second), now.Unix(), access, refresh}))
}

func (s *Server) refuseToken(w http.ResponseWriter, status int, hint string) {
	s.mu.Lock()
	s.oauthN["refused:"+hint]++
	s.mu.Unlock()
	writeProblem(w, oauthProblem(status, hint))
}

// DisableHookSignature is the signature amoCRM puts on the disable hook:
// hex HMAC-SHA256 of "client_id|account_id" keyed with the client secret.
func DisableHookSignature(clientID, clientSecret string, accountID int) string {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(clientID + "|" + strconv.Itoa(accountID)))
	return hex.EncodeToString(m.Sum(nil))
}

// DisableHookQuery returns the query of the GET amoCRM sends to the
// integration's disable hook when an admin disables it for the account.
func (s *Server) DisableHookQuery(accountID int) url.Values {
	return url.Values{
		"account_id":  {strconv.Itoa(accountID)},
		"client_uuid": {s.opts.ClientID},
		"signature":   {DisableHookSignature(s.opts.ClientID, s.opts.ClientSecret, accountID)},
	}
}

// DisposableClaims are the claims of a widget's X-Auth-Token (fixture
// disposable_token_claims.json).
type DisposableClaims struct {
	Iss        string `json:"iss"`
	Aud        string `json:"aud"`
	Jti        string `json:"jti"`
	Iat        int64  `json:"iat"`
	Nbf        int64  `json:"nbf"`
	Exp        int64  `json:"exp"`
	AccountID  int    `json:"account_id"`
	UserID     int    `json:"user_id"`
	Subdomain  string `json:"subdomain"`
	ClientUUID string `json:"client_uuid"`
	IsAdmin    bool   `json:"is_admin"`
}

// SignDisposableToken signs claims as amoCRM does: HS256 JWT keyed with the
// client secret's raw bytes, header {"typ":"JWT","alg":"HS256"}.
func SignDisposableToken(claims any, secret string) string {
	// encoding/json would sort the keys; keep the order amoCRM sends.
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`))
	body := b64json(claims)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(head + "." + body))
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// DisposableToken mints the X-Auth-Token the widget of this account would
// send as user userID: valid for 30 minutes from the simulator's clock,
// aud = audience (scheme://host of the Redirect URI).
func (s *Server) DisposableToken(accountID, userID int, audience string) (string, DisposableClaims, error) {
	s.mu.Lock()
	a := s.accounts[accountID]
	var u *User
	if a != nil {
		u = a.user(userID)
	}
	s.mu.Unlock()
	if a == nil || u == nil {
		return "", DisposableClaims{}, fmt.Errorf("amosim: no user %d in account %d", userID, accountID)
	}
	now := s.clock()
	c := DisposableClaims{
		Iss: "https://" + a.spec.Domain, Aud: audience, Jti: uuid(), Iat: now.Unix(), Nbf: now.Unix(),
		Exp: now.Add(30 * time.Minute).Unix(), AccountID: accountID, UserID: userID,
		Subdomain: a.spec.Subdomain, ClientUUID: s.opts.ClientID, IsAdmin: u.IsAdmin,
	}
	return SignDisposableToken(c, s.opts.ClientSecret), c, nil
}

func uuid() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// handleSubdomain is GET /oauth2/account/current/subdomain with
// X-Refresh-Token (contract §1.7).
func (s *Server) handleSubdomain(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	t := s.refresh[r.Header.Get("X-Refresh-Token")]
	var a *account
	if t != nil && !t.used && !t.revoked && s.clock().Before(t.expires) {
		a = s.accounts[t.accountID]
	}
	s.mu.Unlock()
	if a == nil {
		writeProblem(w, problem(http.StatusUnauthorized, "Unauthorized", "Неверный логин или пароль"))
		return
	}
	writeHAL(w, http.StatusOK, map[string]any{"id": a.spec.ID, "subdomain": a.spec.Subdomain,
		"domain": a.spec.Domain, "top_level_domain": a.spec.Domain[strings.LastIndexByte(a.spec.Domain, '.')+1:]})
}
