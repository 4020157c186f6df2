package amocrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/crm/crmhttp"
)

// OAuthConfig is the integration's identity at amoCRM. The client secret
// goes only to an account host the HostPolicy allows.
type OAuthConfig struct {
	ClientID     string
	ClientSecret string
	// RedirectURI must equal the integration's (amoCRM checks it on every
	// token request).
	RedirectURI string
}

// Token is a token endpoint answer.
type Token struct {
	TokenType    string
	AccessToken  string
	RefreshToken string
	// Expiry is computed from expires_in against the local clock.
	Expiry     time.Time
	ServerTime int64
}

type tokenJSON struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ServerTime   int64  `json:"server_time"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// ConsentURL is the consent page an admin is sent to for the button flow
// (contract §1.2); mode is "popup" or "post_message". kommo picks Kommo's
// page.
func (o OAuthConfig) ConsentURL(state, mode string, kommo bool) string {
	host := "www.amocrm.ru"
	if kommo {
		host = "www.kommo.com"
	}
	q := url.Values{"client_id": {o.ClientID}, "state": {state}}
	if mode != "" {
		q.Set("mode", mode)
	}
	return "https://" + host + "/oauth?" + q.Encode()
}

// Exchange trades an authorization code (single use, 20 minutes) for
// tokens at https://{host}/oauth2/access_token.
//
// The request is written by hand rather than through golang.org/x/oauth2:
// amoCRM documents a JSON body, which x/oauth2 cannot send (it always posts
// a form), and its refusals are problem+json with the cause in "hint",
// which x/oauth2 would reduce to a RetrieveError that still holds the
// request with the client secret.
func (c *Client) Exchange(ctx context.Context, host, code string) (*Token, error) {
	if code == "" {
		return nil, errors.New("amocrm: exchange: empty code")
	}
	return c.grant(ctx, host, tokenRequest{GrantType: "authorization_code", Code: code})
}

// Refresh trades a refresh token for a new pair. The old refresh token is
// dead the moment amoCRM answers: store the new pair before using it. A
// refusal matches ErrNeedsReauth.
func (c *Client) Refresh(ctx context.Context, host, refreshToken string) (*Token, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("amocrm: refresh: %w: no refresh token", ErrNeedsReauth)
	}
	return c.grant(ctx, host, tokenRequest{GrantType: "refresh_token", RefreshToken: refreshToken})
}

// tokenRequest is the token endpoint's JSON body, fields in the order of
// the contract's examples.
type tokenRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	GrantType    string `json:"grant_type"`
	Code         string `json:"code,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	RedirectURI  string `json:"redirect_uri"`
}

// TokenRequestBody returns the exact JSON body of a token request.
func (o OAuthConfig) TokenRequestBody(grantType, codeOrRefreshToken string) ([]byte, error) {
	r := tokenRequest{ClientID: o.ClientID, ClientSecret: o.ClientSecret, GrantType: grantType, RedirectURI: o.RedirectURI}
	switch grantType {
	case "authorization_code":
		r.Code = codeOrRefreshToken
	case "refresh_token":
		r.RefreshToken = codeOrRefreshToken
	default:
		return nil, fmt.Errorf("amocrm: unknown grant type %q", grantType)
	}
	return encodeJSON(r)
}

func (c *Client) grant(ctx context.Context, host string, params tokenRequest) (*Token, error) {
	op := "POST /oauth2/access_token " + params.GrantType
	if c.oauth.ClientID == "" || c.oauth.ClientSecret == "" {
		return nil, fmt.Errorf("amocrm: %s: client id or secret not configured", op)
	}
	base, err := c.hosts.AccountBase(host)
	if err != nil {
		return nil, err
	}
	secret := params.Code + params.RefreshToken
	body, err := c.oauth.TokenRequestBody(params.GrantType, secret)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/access_token", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("amocrm: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("amocrm: %s: %w", op, crmhttp.StripURL(err))
	}
	defer resp.Body.Close()
	data, rerr := crmhttp.ReadCapped(resp.Body, 1<<20)
	if resp.StatusCode != http.StatusOK {
		e := parseError(op, resp.StatusCode, resp.Header, data)
		e.Grant = true
		return nil, e
	}
	if rerr != nil {
		return nil, fmt.Errorf("amocrm: %s: %w", op, rerr)
	}
	var tj tokenJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("amocrm: %s: decode: %w", op, err)
	}
	if tj.AccessToken == "" || !strings.EqualFold(tj.TokenType, "Bearer") {
		return nil, fmt.Errorf("amocrm: %s: answer has no bearer access token", op)
	}
	t := &Token{TokenType: tj.TokenType, AccessToken: tj.AccessToken, RefreshToken: tj.RefreshToken, ServerTime: tj.ServerTime}
	if tj.ExpiresIn > 0 {
		t.Expiry = time.Now().Add(time.Duration(tj.ExpiresIn) * time.Second)
	}
	return t, nil
}
