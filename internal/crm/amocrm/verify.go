package amocrm

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrBadSignature is wrapped by every refused disable hook, widget token
// and amojo hook.
var ErrBadSignature = errors.New("amocrm: signature check failed")

// DisableHookSignature is what amoCRM signs the disable hook with: hex
// HMAC-SHA256 of "client_id|account_id" keyed with the client secret.
func DisableHookSignature(clientID, clientSecret string, accountID int) string {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(clientID + "|" + strconv.Itoa(accountID)))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyDisableHook checks the query of a disable hook (account_id,
// client_uuid, signature) and returns the account id. The docs name the
// integration id client_id in one place and client_uuid in the example;
// both are read, and it must be ours.
func (o OAuthConfig) VerifyDisableHook(q url.Values) (int, error) {
	if o.ClientID == "" || o.ClientSecret == "" {
		return 0, errors.New("amocrm: disable hook: client id or secret not configured")
	}
	cid := q.Get("client_uuid")
	if cid == "" {
		cid = q.Get("client_id")
	}
	if cid != o.ClientID {
		return 0, fmt.Errorf("%w: disable hook for another integration", ErrBadSignature)
	}
	id, err := strconv.Atoi(q.Get("account_id"))
	if err != nil || id <= 0 || strconv.Itoa(id) != q.Get("account_id") {
		return 0, fmt.Errorf("%w: disable hook: bad account_id", ErrBadSignature)
	}
	want := DisableHookSignature(o.ClientID, o.ClientSecret, id)
	if !hmac.Equal([]byte(strings.ToLower(q.Get("signature"))), []byte(want)) {
		return 0, fmt.Errorf("%w: disable hook: wrong signature", ErrBadSignature)
	}
	return id, nil
}

// WidgetClaims are the claims of the widget's disposable token.
type WidgetClaims struct {
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

// Host returns the account host named by iss.
func (c *WidgetClaims) Host() string {
	u, err := url.Parse(c.Iss)
	if err != nil {
		return ""
	}
	return u.Host
}

// WidgetVerifier checks the X-Auth-Token a widget sends with
// $authorizedAjax (contract §4.4).
type WidgetVerifier struct {
	ClientID     string
	ClientSecret string
	// Audience is scheme://host of the integration's Redirect URI.
	Audience string
	// Hosts checks the account host in iss.
	Hosts HostPolicy
	// Leeway tolerates clock skew on nbf and exp; 0 is none.
	Leeway time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Replayed, when set, records a token's jti (until its expiry) and
	// reports whether it was seen before: a replayed token is refused,
	// which makes the token single use as amoCRM intends.
	Replayed func(jti string, until time.Time) bool
}

// Verify checks a token: HS256 keyed with the client secret's raw bytes,
// aud, client_uuid, nbf <= now < exp, iss an account host, account_id and
// user_id present. The jti is the caller's to record for single use.
func (v WidgetVerifier) Verify(token string) (*WidgetClaims, error) {
	if v.ClientSecret == "" || v.ClientID == "" || v.Audience == "" {
		return nil, errors.New("amocrm: widget token: verifier not configured")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: widget token: not a JWT", ErrBadSignature)
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: widget token: header", ErrBadSignature)
	}
	var head struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &head) != nil || head.Alg != "HS256" {
		// Never let the token pick its algorithm ("none", RS256 keyed
		// with a public value, HS512...).
		return nil, fmt.Errorf("%w: widget token: algorithm %q", ErrBadSignature, head.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: widget token: signature encoding", ErrBadSignature)
	}
	m := hmac.New(sha256.New, []byte(v.ClientSecret))
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return nil, fmt.Errorf("%w: widget token: wrong signature", ErrBadSignature)
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: widget token: claims", ErrBadSignature)
	}
	var c WidgetClaims
	dec := json.NewDecoder(bytes.NewReader(cb))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: widget token: claims: %v", ErrBadSignature, err)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	switch {
	case c.Aud != v.Audience:
		return nil, fmt.Errorf("%w: widget token: audience %q", ErrBadSignature, c.Aud)
	case c.ClientUUID != v.ClientID:
		return nil, fmt.Errorf("%w: widget token: for another integration", ErrBadSignature)
	case c.Exp == 0 || !now.Before(time.Unix(c.Exp, 0).Add(v.Leeway)):
		return nil, fmt.Errorf("%w: widget token: expired", ErrBadSignature)
	case c.Nbf != 0 && now.Add(v.Leeway).Before(time.Unix(c.Nbf, 0)):
		return nil, fmt.Errorf("%w: widget token: not yet valid", ErrBadSignature)
	case c.AccountID <= 0 || c.UserID <= 0:
		return nil, fmt.Errorf("%w: widget token: no account_id or user_id", ErrBadSignature)
	}
	iss, err := url.Parse(c.Iss)
	if err != nil || iss.Host == "" {
		return nil, fmt.Errorf("%w: widget token: issuer %q", ErrBadSignature, c.Iss)
	}
	if _, err := v.Hosts.AccountBase(iss.Host); err != nil {
		return nil, fmt.Errorf("%w: widget token: issuer: %v", ErrBadSignature, err)
	}
	if v.Replayed != nil && (c.Jti == "" || v.Replayed(c.Jti, time.Unix(c.Exp, 0))) {
		return nil, fmt.Errorf("%w: widget token: used before", ErrBadSignature)
	}
	return &c, nil
}

// VerifyFor is Verify for a page of one account: a valid token of another
// account is refused too.
func (v WidgetVerifier) VerifyFor(token string, accountID int) (*WidgetClaims, error) {
	c, err := v.Verify(token)
	if err != nil {
		return nil, err
	}
	if c.AccountID != accountID {
		return nil, fmt.Errorf("%w: widget token of account %d, not %d", ErrBadSignature, c.AccountID, accountID)
	}
	return c, nil
}
