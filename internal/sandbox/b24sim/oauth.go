package b24sim

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type accessToken struct {
	memberID string
	userID   int
	scope    string
	expires  time.Time
}

type refreshToken struct {
	memberID string
	userID   int
	expires  time.Time
}

type authCode struct {
	memberID string
	userID   int
	expires  time.Time
}

// tokenResponse is oauth.bitrix.info's answer; field order follows the
// fixtures (alphabetical, as PHP's ksort leaves it).
type tokenResponse struct {
	AccessToken    string `json:"access_token"`
	ClientEndpoint string `json:"client_endpoint"`
	Domain         string `json:"domain"`
	Expires        int64  `json:"expires"`
	ExpiresIn      int    `json:"expires_in"`
	MemberID       string `json:"member_id"`
	RefreshToken   string `json:"refresh_token"`
	Scope          string `json:"scope"`
	ServerEndpoint string `json:"server_endpoint"`
	Status         string `json:"status"`
	UserID         int    `json:"user_id"`
}

// issueAccessLocked creates an access token for a user of p.
func (s *Server) issueAccessLocked(p *Portal, userID int, now time.Time) (string, time.Time) {
	tok := newToken(now, p.memberID, userID)
	exp := now.Add(s.opts.AccessTTL)
	s.access[tok] = &accessToken{memberID: p.memberID, userID: userID, scope: p.scope, expires: exp}
	return tok, exp
}

// issuePairLocked creates an access/refresh pair, as the OAuth server does
// on install, code exchange and refresh.
func (s *Server) issuePairLocked(p *Portal, userID int, now time.Time) (access, refresh string, expires time.Time) {
	access, expires = s.issueAccessLocked(p, userID, now)
	refresh = newToken(now, p.memberID, userID)
	s.refresh[refresh] = &refreshToken{memberID: p.memberID, userID: userID, expires: now.Add(s.opts.RefreshTTL)}
	return access, refresh, expires
}

// InstallTokens issues a fresh token pair for the portal's admin, as an
// installation does (ONAPPINSTALL / the installer iframe). It panics for an
// unknown member id.
func (s *Server) InstallTokens(memberID string) (access, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	access, refresh, _ = s.issuePairLocked(p, p.adminID, s.clock())
	return access, refresh
}

// UserToken issues an access token (no refresh token) for any user of the
// portal, like the tokens event auth blocks and iframe POSTs carry.
func (s *Server) UserToken(memberID string, userID int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	tok, _ := s.issueAccessLocked(p, userID, s.clock())
	return tok
}

// IssueAuthCode returns an authorization code for the portal's admin, as
// the redirect from /oauth/authorize/ would carry. It is valid for
// Options.AuthCodeTTL (30 s) by Clock and can be exchanged once.
func (s *Server) IssueAuthCode(memberID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	return s.issueCodeLocked(p, s.clock())
}

func (s *Server) issueCodeLocked(p *Portal, now time.Time) string {
	code := randomHex(35)
	s.codes[code] = &authCode{memberID: p.memberID, userID: p.adminID, expires: now.Add(s.opts.AuthCodeTTL)}
	return code
}

// ExpireAccessTokens makes every access token of the portal expired now, so
// the next REST call gets 401 expired_token.
func (s *Server) ExpireAccessTokens(memberID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	now := s.clock()
	for _, t := range s.access {
		if t.memberID == p.memberID && t.expires.After(now) {
			t.expires = now
		}
	}
}

// RevokeRefreshTokens invalidates every refresh token of the portal: the
// next refresh gets invalid_grant and the app must be re-authorized.
func (s *Server) RevokeRefreshTokens(memberID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	for k, t := range s.refresh {
		if t.memberID == p.memberID {
			delete(s.refresh, k)
		}
	}
}

// RevokeAccessTokens makes every access token of the portal unknown (401
// invalid_token), as after an uninstall.
func (s *Server) RevokeAccessTokens(memberID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	for k, t := range s.access {
		if t.memberID == p.memberID {
			delete(s.access, k)
		}
	}
}

// TokenCalls counts /oauth/token/ requests with grant_type (as sent, e.g.
// "refresh_token"), successful or not; "" counts all.
func (s *Server) TokenCalls(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if grantType == "" {
		n := 0
		for _, c := range s.tokenCalls {
			n += c
		}
		return n
	}
	return s.tokenCalls[grantType]
}

// clientOK checks client credentials; an unconfigured ClientID accepts all.
func (s *Server) clientOK(id, secret string) bool {
	if s.opts.ClientID == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1
}

// handleToken serves oauth.bitrix.info/oauth/token/. The official SDK uses
// GET with query parameters; POST forms are accepted too (contract marks
// POST as unsure, so the simulator is tolerant). Client credentials may
// also come as HTTP Basic.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, base string) map[string]any {
	if err := r.ParseForm(); err != nil {
		writeAPIError(w, errInvalidRequest("malformed parameters"))
		return nil
	}
	q := r.Form
	recorded := make(map[string]any, len(q))
	for k := range q {
		recorded[k] = q.Get(k)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeAPIError(w, errInvalidRequest("unsupported method "+r.Method))
		return recorded
	}
	grant := q.Get("grant_type")
	clientID, secret := q.Get("client_id"), q.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && clientID == "" {
		clientID, secret = u, p
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenCalls[grant]++
	now := s.clock()
	var (
		p      *Portal
		userID int
	)
	switch grant {
	case "":
		writeAPIError(w, errInvalidRequest("grant_type is required"))
		return recorded
	case "authorization_code", "refresh_token":
	default:
		writeAPIError(w, errInvalidRequest("unsupported grant_type "+grant))
		return recorded
	}
	if !s.clientOK(clientID, secret) {
		writeAPIError(w, errInvalidClient())
		return recorded
	}
	switch grant {
	case "authorization_code":
		code := q.Get("code")
		c, ok := s.codes[code]
		if code == "" || !ok {
			writeAPIError(w, errInvalidGrant())
			return recorded
		}
		// Single use: a code is spent by any exchange attempt, even one
		// that arrives late.
		delete(s.codes, code)
		if !now.Before(c.expires) {
			writeAPIError(w, errInvalidGrant())
			return recorded
		}
		p, userID = s.portals[c.memberID], c.userID
	case "refresh_token":
		rt := q.Get("refresh_token")
		t, ok := s.refresh[rt]
		if rt == "" || !ok || !now.Before(t.expires) {
			writeAPIError(w, errInvalidGrant())
			return recorded
		}
		p, userID = s.portals[t.memberID], t.userID
		if p != nil && p.paymentRequired {
			// The token is not consumed: after payment the same refresh
			// token works again.
			writeAPIError(w, errPaymentRequired(s.opts.PaymentRequiredStatus))
			return recorded
		}
		// Single use (contract §1.5): the old refresh token dies now.
		delete(s.refresh, rt)
	}
	if p == nil {
		writeAPIError(w, errInvalidGrant())
		return recorded
	}
	if p.paymentRequired {
		writeAPIError(w, errPaymentRequired(s.opts.PaymentRequiredStatus))
		return recorded
	}
	access, refresh, exp := s.issuePairLocked(p, userID, now)
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:    access,
		ClientEndpoint: base + "/rest/",
		Domain:         OAuthDomain,
		Expires:        exp.Unix(),
		ExpiresIn:      int(s.opts.AccessTTL / time.Second),
		MemberID:       p.memberID,
		RefreshToken:   refresh,
		Scope:          p.scope,
		ServerEndpoint: base + "/rest/",
		Status:         p.status,
		UserID:         userID,
	})
	return recorded
}

// handleAuthorize serves https://{portal}/oauth/authorize/: the (logged in)
// admin approves and the browser is sent to the app card's redirect URI with
// a fresh code. The portal is the one whose domain is the request host, else
// the one named by member_id or domain in the query (a simulator
// convenience), else the only portal.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) map[string]any {
	q := r.URL.Query()
	recorded := make(map[string]any, len(q))
	for k := range q {
		recorded[k] = q.Get(k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.ClientID != "" && q.Get("client_id") != s.opts.ClientID {
		writeAPIError(w, errInvalidClient())
		return recorded
	}
	if s.opts.RedirectURL == "" {
		writeAPIError(w, errInvalidRequest("the app has no redirect URL configured (Options.RedirectURL)"))
		return recorded
	}
	p := s.authorizePortalLocked(r)
	if p == nil {
		writeAPIError(w, errInvalidRequest("cannot tell which portal: use the portal domain as host or pass member_id"))
		return recorded
	}
	target, err := url.Parse(s.opts.RedirectURL)
	if err != nil {
		writeAPIError(w, errInvalidRequest("bad redirect URL: "+err.Error()))
		return recorded
	}
	rq := target.Query()
	rq.Set("code", s.issueCodeLocked(p, s.clock()))
	rq.Set("state", q.Get("state"))
	rq.Set("domain", p.domain)
	rq.Set("member_id", p.memberID)
	rq.Set("scope", p.scope)
	rq.Set("server_domain", OAuthDomain)
	target.RawQuery = rq.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
	return recorded
}

func (s *Server) authorizePortalLocked(r *http.Request) *Portal {
	host := strings.ToLower(hostOnly(r.Host))
	for _, p := range s.portals {
		if strings.EqualFold(p.domain, host) {
			return p
		}
	}
	q := r.URL.Query()
	if id := q.Get("member_id"); id != "" {
		return s.portals[strings.ToLower(id)]
	}
	if d := q.Get("domain"); d != "" {
		for _, p := range s.portals {
			if strings.EqualFold(p.domain, d) {
				return p
			}
		}
		return nil
	}
	if len(s.portals) == 1 {
		for _, p := range s.portals {
			return p
		}
	}
	return nil
}

// authenticateLocked resolves a REST access token.
func (s *Server) authenticateLocked(token string, now time.Time) (*accessToken, *Portal, *apiError) {
	if token == "" {
		return nil, nil, errNoAuth()
	}
	t, ok := s.access[token]
	if !ok {
		return nil, nil, errInvalidToken()
	}
	p, ok := s.portals[t.memberID]
	if !ok {
		return nil, nil, errInvalidToken()
	}
	if !now.Before(t.expires) {
		return nil, nil, errExpiredToken()
	}
	return t, p, nil
}
