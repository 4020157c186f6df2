package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/switchboard/switchboard/internal/crm/crmhttp"
)

// DefaultAuthServerURL is Bitrix24's OAuth server, shared by all portals.
const DefaultAuthServerURL = "https://oauth.bitrix.info"

// ErrInvalidEndpoint is wrapped by every client-endpoint check failure.
var ErrInvalidEndpoint = errors.New("bitrix24: invalid client endpoint")

const (
	defaultOAuthTimeout = 30 * time.Second
	maxTokenBody        = 1 << 20 // x/oauth2's own cap on token answers
)

// OAuthConfig is the app's identity at Bitrix24. The client secret goes to
// the auth server only, never to a portal.
type OAuthConfig struct {
	ClientID     string
	ClientSecret string
	// AuthServerURL defaults to DefaultAuthServerURL.
	AuthServerURL string
	// RedirectURL is optional: Bitrix24 takes the redirect from the app
	// card; when set it is passed on as redirect_uri.
	RedirectURL string

	// AllowInsecure accepts http:// auth servers and client endpoints
	// (tests, simulator).
	AllowInsecure bool
	// TokenRequestPOST sends token requests the way x/oauth2 builds them
	// (POST form). By default the same parameters go as a GET query, the
	// form the contract and Bitrix24's own SDK use.
	TokenRequestPOST bool
}

// Token is a token answer from the OAuth server.
type Token struct {
	AccessToken  string
	RefreshToken string
	Expiry       time.Time

	MemberID       string // stable portal id; survives domain renames
	ClientEndpoint string // https://{portal}/rest/, the REST base
	ServerEndpoint string
	// Domain is the portal host taken from ClientEndpoint. (The answer's
	// own "domain" field names the auth server, not the portal.)
	Domain string
	Scope  string
	Status string // L, F, D, T or P
	UserID string
}

// AuthCodeURL returns the portal's authorisation page for the "full" OAuth
// flow. domain is the portal host; it is reached over https unless written
// with an explicit http:// (tests). It returns "" for an empty domain.
func (o OAuthConfig) AuthCodeURL(domain, state string) string {
	scheme, host := "https", strings.TrimSpace(domain)
	if i := strings.Index(host, "://"); i >= 0 {
		if strings.EqualFold(host[:i], "http") {
			scheme = "http"
		}
		host = host[i+3:]
	}
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if host == "" || strings.ContainsAny(host, "@\\ ") {
		return ""
	}
	authURL := (&url.URL{Scheme: scheme, Host: host, Path: "/oauth/authorize/"}).String()
	return o.config(authURL).AuthCodeURL(state)
}

// Exchange trades an authorisation code (valid for 30 seconds) for tokens.
// The answer must name a valid client endpoint. hc sends the request; nil
// takes the client stored in ctx under oauth2.HTTPClient, else a plain one
// with a 30s timeout.
func (o OAuthConfig) Exchange(ctx context.Context, hc *http.Client, code string) (*Token, error) {
	const op = "exchange code"
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("bitrix24: %s: %w", op, err)
	}
	tok, err := o.config("").Exchange(o.context(ctx, hc), code)
	if err != nil {
		return nil, o.tokenError(op, err, code)
	}
	t := tokenFrom(tok)
	if t.ClientEndpoint == "" {
		return nil, fmt.Errorf("bitrix24: %s: answer has no client_endpoint: %w", op, ErrInvalidEndpoint)
	}
	if err := ValidateClientEndpoint(t.ClientEndpoint, o.AllowInsecure); err != nil {
		return nil, fmt.Errorf("bitrix24: %s: %w", op, err)
	}
	return t, nil
}

// Refresh trades a refresh token for a new pair. The old refresh token must
// be considered spent: the caller has to store the new one. invalid_grant,
// invalid_client and PAYMENT_REQUIRED come back as an *APIError wrapping
// ErrNeedsReauth. hc is used as in Exchange.
func (o OAuthConfig) Refresh(ctx context.Context, hc *http.Client, refreshToken string) (*Token, error) {
	const op = "refresh token"
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("bitrix24: %s: %w", op, err)
	}
	if refreshToken == "" {
		return nil, fmt.Errorf("bitrix24: %s: empty refresh token", op)
	}
	// An access-token-less Token makes the source refresh straight away.
	tok, err := o.config("").TokenSource(o.context(ctx, hc), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, o.tokenError(op, err, refreshToken)
	}
	t := tokenFrom(tok)
	if t.ClientEndpoint != "" {
		if err := ValidateClientEndpoint(t.ClientEndpoint, o.AllowInsecure); err != nil {
			return nil, fmt.Errorf("bitrix24: %s: %w", op, err)
		}
	}
	return t, nil
}

func (o OAuthConfig) config(authURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		RedirectURL:  o.RedirectURL,
		Endpoint: oauth2.Endpoint{
			AuthURL:   authURL,
			TokenURL:  strings.TrimRight(o.authServer(), "/") + "/oauth/token/",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

func (o OAuthConfig) authServer() string {
	if o.AuthServerURL == "" {
		return DefaultAuthServerURL
	}
	return o.AuthServerURL
}

// check refuses to send the client secret anywhere but an https server.
func (o OAuthConfig) check() error {
	if o.ClientID == "" || o.ClientSecret == "" {
		return errors.New("client id or secret not configured")
	}
	u, err := url.Parse(o.authServer())
	if err != nil || u.Host == "" || u.User != nil {
		return errors.New("invalid auth server URL")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !o.AllowInsecure) {
		return errors.New("auth server URL must be https")
	}
	return nil
}

// context hands x/oauth2 our HTTP client, wrapped to send GET requests and
// never follow redirects: a redirected token request would carry the client
// secret to wherever the redirect points.
func (o OAuthConfig) context(ctx context.Context, hc *http.Client) context.Context {
	if hc == nil {
		if v, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && v != nil {
			hc = v
		} else {
			hc = &http.Client{Timeout: defaultOAuthTimeout}
		}
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	wrapped := *hc
	wrapped.Transport = &tokenTransport{base: base, get: !o.TokenRequestPOST}
	wrapped.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return context.WithValue(ctx, oauth2.HTTPClient, &wrapped)
}

// tokenError maps x/oauth2's errors to an *APIError (wrapping
// ErrNeedsReauth when the refresh token or app is dead). The RetrieveError
// itself is dropped: its Response still holds the request, secret and all.
func (o OAuthConfig) tokenError(op string, err error, secrets ...string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("bitrix24: %s: %w", op, crmhttp.StripURL(err))
	}
	status, header := 0, http.Header{}
	if re.Response != nil {
		status, header = re.Response.StatusCode, re.Response.Header
	}
	var ae *APIError
	if re.ErrorCode != "" {
		ae = &APIError{HTTPStatus: status, Code: re.ErrorCode, Description: re.ErrorDescription}
	} else {
		ae = parseAPIError(status, re.Body, header, time.Now(), append(secrets, o.ClientSecret)...)
	}
	if isReauthCode(ae.Code) {
		ae.wrapped = ErrNeedsReauth
	}
	return fmt.Errorf("bitrix24: %s: %w", op, ae)
}

func tokenFrom(tok *oauth2.Token) *Token {
	t := &Token{
		AccessToken:    tok.AccessToken,
		RefreshToken:   tok.RefreshToken,
		Expiry:         tok.Expiry,
		MemberID:       extraString(tok, "member_id"),
		ClientEndpoint: extraString(tok, "client_endpoint"),
		ServerEndpoint: extraString(tok, "server_endpoint"),
		Scope:          extraString(tok, "scope"),
		Status:         extraString(tok, "status"),
		UserID:         extraString(tok, "user_id"),
	}
	if t.Expiry.IsZero() {
		if exp, err := strconv.ParseInt(extraString(tok, "expires"), 10, 64); err == nil && exp > 0 {
			t.Expiry = time.Unix(exp, 0)
		}
	}
	if u, err := url.Parse(t.ClientEndpoint); err == nil {
		t.Domain = u.Host
	}
	return t
}

// extraString reads a field of the token answer as text; numbers (user_id
// is one) come back in plain decimal.
func extraString(tok *oauth2.Token, key string) string {
	switch v := tok.Extra(key).(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case int64:
		return strconv.FormatInt(v, 10)
	default:
		return fmt.Sprint(v)
	}
}

// ValidateClientEndpoint checks a REST base URL before any token is sent to
// it: absolute https (http only with allowInsecure), a host, no user info,
// query or fragment, and a path ending in "/rest/".
func ValidateClientEndpoint(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: not a URL", ErrInvalidEndpoint)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowInsecure:
	default:
		return fmt.Errorf("%w: %q is not https", ErrInvalidEndpoint, raw)
	}
	if u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("%w: %q", ErrInvalidEndpoint, raw)
	}
	if !strings.HasSuffix(u.Path, "/rest/") {
		return fmt.Errorf("%w: %q does not end in /rest/", ErrInvalidEndpoint, raw)
	}
	return nil
}

// tokenTransport turns x/oauth2's POST form into the GET query the contract
// prescribes, and labels a JSON answer sent as text/plain as JSON (x/oauth2
// would parse text/plain as a query string and find no token).
type tokenTransport struct {
	base http.RoundTripper
	get  bool
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.get && req.Method == http.MethodPost && req.Body != nil {
		form, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		r2 := req.Clone(req.Context())
		r2.Method = http.MethodGet
		r2.Body, r2.GetBody, r2.ContentLength = nil, nil, 0
		r2.Header.Del("Content-Type")
		u := *req.URL
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += string(form)
		r2.URL = &u
		req = r2
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "text/plain" || ct == "application/x-www-form-urlencoded" {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody+1))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
			resp.Header = resp.Header.Clone()
			resp.Header.Set("Content-Type", "application/json")
		}
		resp.Body = io.NopCloser(bytes.NewReader(data))
	}
	return resp, nil
}
