// Package bitrix24 talks to Bitrix24 portals: the OAuth server, the REST API
// of each portal (with a per-portal rate limiter, token refresh and batch
// calls) and the PHP-style form encoding Bitrix24 uses for events and batch
// commands. Contract: shared/docs/bitrix24.md.
package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/crm/crmhttp"
)

const (
	// DefaultRate and DefaultBurst keep under the cloud's leaky bucket
	// (drains 2 requests/s, blocks above 50) with room for other apps on the
	// same portal and source IP.
	DefaultRate  = 2.0
	DefaultBurst = 40

	// DefaultMaxResponseBytes caps a REST answer; a full batch of 50 list
	// pages is a few MB, so more means something is wrong.
	DefaultMaxResponseBytes = 32 << 20

	// PageSize is Bitrix24's fixed list page size.
	PageSize = 50

	// maxRedirects bounds portal-rename hops for one call.
	maxRedirects = 3

	// refreshTimeout bounds one token refresh, lock wait included.
	refreshTimeout = 30 * time.Second

	defaultHTTPTimeout = 75 * time.Second // the cloud cuts a call at 60s
)

// ClientOptions configure a Client. Tokens is required.
type ClientOptions struct {
	OAuth OAuthConfig
	// HTTP sends every request; the gateway passes its guarded client. Its
	// redirect policy is overridden (see Client.Call); nil gets a plain
	// client with a 75s timeout.
	HTTP   *http.Client
	Tokens TokenStore
	// Limiter spaces each portal's calls (the gateway passes crm's, at
	// DefaultRate/DefaultBurst); nil sends without limit, for tests.
	Limiter Limiter
	Logger  *slog.Logger
	// AllowInsecure accepts http:// client endpoints and auth servers; for
	// tests and the simulator only.
	AllowInsecure bool
	// OnEndpointMoved is told when a portal answered with a redirect to a
	// new host (the portal was renamed) and the call succeeded there, so
	// the stored client endpoint can be updated. It may be nil.
	OnEndpointMoved func(integrationID, newEndpoint string)
	// MaxResponseBytes caps one answer; zero takes DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Limiter is what the client needs from a rate limiter: one slot of an
// integration's own bucket before each call.
type Limiter interface {
	Wait(ctx context.Context, integrationID string) error
}

// Client calls the REST API of many portals. It holds no tokens itself:
// each call loads the integration's credentials from the TokenStore. Safe
// for concurrent use.
type Client struct {
	oauth         OAuthConfig
	oauthHTTP     *http.Client // the caller's client, for token requests
	hc            *http.Client // the same without redirects, for REST calls
	tokens        TokenStore
	log           *slog.Logger
	allowInsecure bool
	onMoved       func(integrationID, newEndpoint string)
	maxBody       int64

	limiter Limiter
}

// NewClient returns a client; see ClientOptions for defaults.
func NewClient(opts ClientOptions) *Client {
	hc := opts.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: defaultHTTPTimeout}
	}
	// A copy, so the caller's client keeps its own policy: net/http would
	// turn a redirected POST into a GET and drop the body, so redirects are
	// handled by hand (re-POSTed after validating the new endpoint).
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	oc := opts.OAuth
	oc.AllowInsecure = oc.AllowInsecure || opts.AllowInsecure

	c := &Client{
		oauth:         oc,
		oauthHTTP:     hc,
		hc:            &noRedirect,
		tokens:        opts.Tokens,
		log:           opts.Logger,
		allowInsecure: opts.AllowInsecure,
		onMoved:       opts.OnEndpointMoved,
		maxBody:       opts.MaxResponseBytes,
		limiter:       opts.Limiter,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	return c
}

// OAuth returns the OAuth configuration the client refreshes tokens with
// (AllowInsecure set when the client allows it).
func (c *Client) OAuth() OAuthConfig { return c.oauth }

// Response is a successful REST answer.
type Response struct {
	Result json.RawMessage
	Total  int    // list methods only
	Next   int    // start of the next page; 0 when there is none
	Time   Timing // zero when the answer had none
}

// Timing is the "time" block of an answer. Only OperatingResetAt and
// Operating matter to the client; the rest is for logs.
type Timing struct {
	Start            float64
	Finish           float64
	Duration         float64
	Processing       float64
	DateStart        string
	DateFinish       string
	OperatingResetAt int64
	Operating        float64
}

// UnmarshalJSON accepts numbers sent as strings, which older portals do.
func (t *Timing) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil // a malformed time block is not worth failing a call for
	}
	t.Start = flexFloat(m["start"])
	t.Finish = flexFloat(m["finish"])
	t.Duration = flexFloat(m["duration"])
	t.Processing = flexFloat(m["processing"])
	t.DateStart = rawString(m["date_start"])
	t.DateFinish = rawString(m["date_finish"])
	t.OperatingResetAt = int64(flexFloat(m["operating_reset_at"]))
	t.Operating = flexFloat(m["operating"])
	return nil
}

// flexFloat reads a JSON number or numeric string; anything else is 0.
func flexFloat(raw json.RawMessage) float64 {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
}

func flexInt(raw json.RawMessage) int { return int(flexFloat(raw)) }

// Call invokes a REST method for an integration and decodes "result" into
// out (which may be nil or a *json.RawMessage). params is sent as a JSON
// body; nil sends {}.
//
// The stored access token is used as is; on 401 expired_token or
// invalid_token the token is refreshed once (serialised per integration
// through the TokenStore) and the call repeated. A refresh the OAuth server
// refuses for good marks the integration with MarkNeedsReauth and returns
// an error wrapping ErrNeedsReauth. Errors from the portal unwrap to
// *APIError.
//
// A portal that was renamed answers with a redirect; the call is re-POSTed
// to the new host (after the same checks as a stored endpoint) and
// OnEndpointMoved is told.
func (c *Client) Call(ctx context.Context, integrationID, method string, params, out any) error {
	resp, err := c.CallResult(ctx, integrationID, method, params)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		return fmt.Errorf("bitrix24: %s: decode result: %w", method, err)
	}
	return nil
}

// CallResult is Call returning the whole answer (total, next, time).
func (c *Client) CallResult(ctx context.Context, integrationID, method string, params any) (*Response, error) {
	if !validMethod(method) {
		return nil, fmt.Errorf("bitrix24: invalid method name %q", method)
	}
	if c.tokens == nil {
		return nil, errors.New("bitrix24: client has no token store")
	}
	body, err := encodeJSON(params)
	if err != nil {
		return nil, fmt.Errorf("bitrix24: %s: encode params: %w", method, err)
	}
	creds, err := c.tokens.Credentials(ctx, integrationID)
	if err != nil {
		return nil, fmt.Errorf("bitrix24: %s: credentials: %w", method, err)
	}
	resp, err := c.do(ctx, integrationID, creds, method, body)
	if err == nil {
		return resp, nil
	}
	if !IsExpiredToken(err) && !IsInvalidToken(err) {
		return nil, fmt.Errorf("bitrix24: %s: %w", method, err)
	}

	creds, err = c.refresh(ctx, integrationID, creds.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("bitrix24: %s: %w", method, err)
	}
	resp, err = c.do(ctx, integrationID, creds, method, body)
	if err == nil {
		return resp, nil
	}
	if hasCode(err, CodeExpiredToken, CodeInvalidToken, CodeNoAuthFound) {
		// A token the OAuth server has just issued is refused: the app lost
		// access to this portal (uninstalled, installing user deactivated).
		// Refreshing again on every call would only burn refresh tokens and
		// risk a ban from the auth server.
		c.markNeedsReauth(ctx, integrationID, creds.Version, "access token refused right after refresh: "+errCode(err))
		return nil, fmt.Errorf("bitrix24: %s: after refresh: %w: %w", method, ErrNeedsReauth, err)
	}
	return nil, fmt.Errorf("bitrix24: %s: %w", method, err)
}

func errCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// refresh returns credentials newer than failedToken: either ones another
// goroutine or gateway instance stored meanwhile, or freshly refreshed ones.
func (c *Client) refresh(ctx context.Context, integrationID, failedToken string) (Credentials, error) {
	// Detached from the caller: once the OAuth server has rotated the
	// refresh token, the new pair must reach the store or the portal is
	// lost for good, so a caller giving up must not cut the refresh short.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()

	var refreshErr error
	var movedTo string
	var refusedVersion int64 // the credentials the OAuth server refused
	creds, err := c.tokens.RefreshLocked(rctx, integrationID, func(cur Credentials) (Credentials, error) {
		refusedVersion = cur.Version
		if cur.AccessToken != failedToken {
			return cur, nil // someone else refreshed while we waited for the lock
		}
		if cur.RefreshToken == "" {
			refreshErr = fmt.Errorf("bitrix24: refresh token: %w",
				&APIError{Code: "no_refresh_token", Description: "no refresh token stored", wrapped: ErrNeedsReauth})
			return Credentials{}, refreshErr
		}
		tok, err := c.oauth.Refresh(rctx, c.oauthHTTP, cur.RefreshToken)
		if err != nil {
			refreshErr = err
			return Credentials{}, err
		}
		if tok.MemberID != "" && cur.MemberID != "" && !strings.EqualFold(tok.MemberID, cur.MemberID) {
			// Never store another portal's tokens under this integration.
			return Credentials{}, fmt.Errorf("bitrix24: refresh answered for member_id %s, want %s", tok.MemberID, cur.MemberID)
		}
		next := cur
		next.AccessToken = tok.AccessToken
		if tok.RefreshToken != "" {
			next.RefreshToken = tok.RefreshToken
		}
		next.Expiry = tok.Expiry
		if tok.ClientEndpoint != "" && tok.ClientEndpoint != cur.ClientEndpoint {
			// The auth server knows the portal's current address; a store
			// that keeps only the tokens hears of it through onMoved.
			next.ClientEndpoint, movedTo = tok.ClientEndpoint, tok.ClientEndpoint
		}
		if next.MemberID == "" {
			next.MemberID = tok.MemberID
		}
		c.log.InfoContext(rctx, "bitrix24: access token refreshed", "integration", integrationID)
		return next, nil
	})
	if err != nil {
		if refreshErr != nil && IsReauthRequired(refreshErr) {
			c.markNeedsReauth(rctx, integrationID, refusedVersion, "refresh refused: "+errCode(refreshErr))
		}
		if refreshErr != nil && errors.Is(err, refreshErr) {
			return Credentials{}, err // already says "bitrix24: refresh token"
		}
		return Credentials{}, fmt.Errorf("bitrix24: refresh token: %w", err)
	}
	if movedTo != "" && c.onMoved != nil {
		c.onMoved(integrationID, movedTo)
	}
	return creds, nil
}

func (c *Client) markNeedsReauth(ctx context.Context, integrationID string, version int64, reason string) {
	marked, err := c.tokens.MarkNeedsReauth(context.WithoutCancel(ctx), integrationID, version, reason)
	switch {
	case err != nil:
		c.log.ErrorContext(ctx, "bitrix24: mark needs re-authorisation", "integration", integrationID, "err", err)
	case marked:
		c.log.WarnContext(ctx, "bitrix24: integration needs re-authorisation", "integration", integrationID, "reason", reason)
	default:
		c.log.InfoContext(ctx, "bitrix24: refused tokens were replaced meanwhile (installed again); not marked", "integration", integrationID)
	}
}

// do makes one logical call with one access token: a rate-limiter slot,
// then the POST and any redirect hops.
func (c *Client) do(ctx context.Context, integrationID string, creds Credentials, method string, body []byte) (*Response, error) {
	endpoint := creds.ClientEndpoint
	if err := ValidateClientEndpoint(endpoint, c.allowInsecure); err != nil {
		return nil, err
	}
	if err := c.wait(ctx, integrationID); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	moved := false
	for hop := 0; ; hop++ {
		start := time.Now()
		resp, location, err := c.post(ctx, endpoint, method, creds.AccessToken, body)
		c.log.DebugContext(ctx, "bitrix24 call", "integration", integrationID, "method", method,
			"duration", time.Since(start), "redirect", location != "", "err", err)
		if err != nil {
			return nil, err
		}
		if location == "" {
			if moved && c.onMoved != nil {
				c.onMoved(integrationID, endpoint)
			}
			return resp, nil
		}
		if hop >= maxRedirects {
			return nil, fmt.Errorf("more than %d redirects", maxRedirects)
		}
		next, err := movedEndpoint(endpoint, location, method, c.allowInsecure)
		if err != nil {
			return nil, fmt.Errorf("redirect: %w", err)
		}
		if next == endpoint {
			return nil, fmt.Errorf("redirect: loop to %s", endpoint)
		}
		c.log.InfoContext(ctx, "bitrix24: portal moved", "integration", integrationID, "from", endpoint, "to", next)
		endpoint, moved = next, true
	}
}

// post sends one request. A redirect is returned as its Location with a nil
// Response.
func (c *Client) post(ctx context.Context, endpoint, method, token string, body []byte) (*Response, string, error) {
	u := endpoint + method + ".json?" + url.Values{"auth": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, "", crmhttp.StripURL(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, "", crmhttp.StripURL(err)
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if loc := resp.Header.Get("Location"); loc != "" {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
			return nil, loc, nil
		}
	}

	data, readErr := crmhttp.ReadCapped(resp.Body, c.maxBody)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A truncated error body still classifies by status.
		return nil, "", parseAPIError(resp.StatusCode, data, resp.Header, time.Now(), token)
	}
	if readErr != nil {
		return nil, "", fmt.Errorf("read response: %w", readErr)
	}
	var env struct {
		Result           json.RawMessage `json:"result"`
		Error            json.RawMessage `json:"error"`
		ErrorDescription json.RawMessage `json:"error_description"`
		Total            json.RawMessage `json:"total"`
		Next             json.RawMessage `json:"next"`
		Time             Timing          `json:"time"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, "", fmt.Errorf("decode response (HTTP %d, %s): %w", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if rawString(env.Error) != "" || (env.Result == nil && env.Error != nil) {
		return nil, "", parseAPIError(resp.StatusCode, data, resp.Header, time.Now(), token)
	}
	if env.Result == nil {
		return nil, "", fmt.Errorf("response has no result (HTTP %d)", resp.StatusCode)
	}
	if ae := nestedResultError(method, env.Result); ae != nil {
		return nil, "", ae
	}
	return &Response{Result: env.Result, Total: flexInt(env.Total), Next: flexInt(env.Next), Time: env.Time}, "", nil
}

// movedEndpoint derives the new client endpoint from a redirect answered
// for {endpoint}{method}.json and checks it like a stored one, since the
// access token is about to be sent there.
func movedEndpoint(endpoint, location, method string, allowInsecure bool) (string, error) {
	base, err := url.Parse(endpoint + method + ".json")
	if err != nil {
		return "", err
	}
	loc, err := url.Parse(location)
	if err != nil {
		return "", errors.New("unparsable Location")
	}
	u := base.ResolveReference(loc)
	if u.User != nil {
		return "", fmt.Errorf("%w: redirect carries user info", ErrInvalidEndpoint)
	}
	path := u.Path
	lower := strings.ToLower(path)
	m := strings.ToLower(method)
	switch {
	case strings.HasSuffix(lower, "/"+m+".json"):
		path = path[:len(path)-len(m)-len(".json")]
	case strings.HasSuffix(lower, "/"+m):
		path = path[:len(path)-len(m)]
	default:
		// Sent to the new host's front page: keep the REST path we had.
		path = base.Path[:len(base.Path)-len(method)-len(".json")]
	}
	next := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: path}).String()
	if err := ValidateClientEndpoint(next, allowInsecure); err != nil {
		return "", err
	}
	return next, nil
}

// List calls a list method page by page (start=0, 50, 100, …) and hands
// every item to each, stopping when the answer has no "next" or each fails.
// The result may be an array or, as with crm.category.list and
// crm.item.list, an object holding one array.
func (c *Client) List(ctx context.Context, integrationID, method string, params map[string]any, each func(item json.RawMessage) error) error {
	p := maps.Clone(params)
	if p == nil {
		p = make(map[string]any)
	}
	start := 0
	if s, ok := p["start"].(int); ok {
		start = s
	}
	for {
		p["start"] = start
		resp, err := c.CallResult(ctx, integrationID, method, p)
		if err != nil {
			return err
		}
		items, err := listItems(resp.Result)
		if err != nil {
			return fmt.Errorf("bitrix24: %s: %w", method, err)
		}
		for _, it := range items {
			if err := each(it); err != nil {
				return err
			}
		}
		if resp.Next <= start { // none, or a portal that would loop forever
			return nil
		}
		start = resp.Next
	}
}

func listItems(result json.RawMessage) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(result, &items); err == nil {
		return items, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(result, &obj); err != nil {
		return nil, errors.New("list result is neither an array nor an object")
	}
	var found []json.RawMessage
	n := 0
	for _, v := range obj {
		var arr []json.RawMessage
		if json.Unmarshal(v, &arr) == nil {
			found = arr
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("list result object does not hold exactly one array")
	}
	return found, nil
}

var methodRE = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)

// validMethod keeps the method name from reaching anything but the path
// segment after the endpoint.
func validMethod(m string) bool { return len(m) <= 200 && methodRE.MatchString(m) }

// wait takes a slot from the integration's limiter, if there is one.
func (c *Client) wait(ctx context.Context, integrationID string) error {
	if c.limiter == nil {
		return nil
	}
	return c.limiter.Wait(ctx, integrationID)
}

// encodeJSON marshals params without HTML escaping, which Bitrix24 does not
// need and which would bloat BB-code message text.
func encodeJSON(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok && len(raw) > 0 {
		return raw, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	if string(out) == "null" { // nil, or a nil map: methods expect an object
		return []byte("{}"), nil
	}
	return out, nil
}
