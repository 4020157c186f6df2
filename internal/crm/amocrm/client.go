// Package amocrm talks to amoCRM and Kommo accounts: the OAuth token
// endpoint of each account, the REST API v4 (HAL answers, problem+json
// errors, a per-account rate limiter, one refresh-and-retry on 401), the
// Chats API (amojo) with its signed requests, and the checks of what amoCRM
// sends the gateway (the disable hook, the widget's disposable token, the
// amojo hook signature, the referer of an install). Contract:
// shared/docs/amocrm.md.
//
// The client keeps no tokens: its TokenSource does, so refreshes can be
// serialised across gateway instances and every rotated pair stored before
// it is used. Service (service.go) is the gateway's amoCRM integration on
// top of the client: registered in the CRM registry, it installs accounts
// (widget install, consent page, long-lived token), keeps their tokens
// sealed in the store (tokens.go), answers the disable hook, lists users
// and binds channels to a pipeline and status.
package amocrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/crmhttp"
)

const (
	// Rate is the documented limit per integration and account (contract
	// §2.4).
	Rate = 7.0
	// Burst 1 spaces calls evenly, so even a limiter on amoCRM's side that
	// allows no burst at all is never tripped by the client.
	Burst = 1

	// PageLimit is the largest page amoCRM serves.
	PageLimit = 250
	// MaxComplex is how many leads one POST /api/v4/leads/complex takes.
	MaxComplex = 50
	// MaxBatch is the batch size used for notes, tasks and contacts
	// (amoCRM recommends ≤ 50 for heavy entities; contract §2.11).
	MaxBatch = 50

	// DefaultMaxResponseBytes caps one answer.
	DefaultMaxResponseBytes = 16 << 20

	maxPages           = 1000
	defaultHTTPTimeout = 30 * time.Second
)

// Account names the amoCRM account a call is for.
type Account struct {
	// ID keys the account's rate-limiter bucket and its tokens (the
	// gateway's integration id).
	ID string
	// Host is the account host as amoCRM gave it in referer, e.g.
	// example.amocrm.ru; calls go to https://{Host}.
	Host string
}

// TokenSource keeps an account's tokens for the client.
type TokenSource interface {
	// AccessToken returns the account's current access token.
	AccessToken(ctx context.Context, accountID string) (string, error)
	// Refresh is called when failed was refused with 401. It returns a
	// newer token: one another goroutine or instance stored meanwhile, or
	// a freshly refreshed one, stored (with its rotated refresh token)
	// before it is returned. Refreshes of one account must be serialised:
	// amoCRM's refresh tokens are single use. A refused grant comes back
	// as an error matching ErrNeedsReauth.
	Refresh(ctx context.Context, accountID, failed string) (string, error)
}

// Limiter spaces one account's calls; *crm.Limiter and *crm.SharedLimiter
// are two.
type Limiter interface {
	Wait(ctx context.Context, key string) error
}

// NewLimiter returns a limiter of this process alone at Rate per second
// per account, Burst 1; the gateway passes one at the same rate shared by
// all its instances (crm.NewLimiterFor).
func NewLimiter() *crm.Limiter { return crm.NewLimiter(crm.LimiterOptions{Rate: Rate, Burst: Burst}) }

// Options configure a Client. Tokens is required for API calls.
type Options struct {
	OAuth OAuthConfig
	// HTTP sends every request; the gateway passes its netguard client so
	// that a host resolving to a private address is refused at dial time.
	// Redirects are never followed (a redirected request would carry the
	// token or the client secret elsewhere). Nil is a plain client.
	HTTP   *http.Client
	Tokens TokenSource
	// Limiter spaces calls per account; nil is NewLimiter().
	Limiter Limiter
	// Hosts says which account hosts may be called.
	Hosts HostPolicy
	// OnNeedsReauth is told when an account's fresh token is refused too
	// (the integration was disabled or the installing user lost access).
	OnNeedsReauth func(ctx context.Context, accountID, reason string)
	// OnPaymentRequired is told when an account answers 402: its
	// subscription is not paid.
	OnPaymentRequired func(ctx context.Context, accountID string)
	Logger            *slog.Logger
	// MaxResponseBytes caps one answer; 0 is DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Client calls amoCRM accounts. Safe for concurrent use.
type Client struct {
	oauth    OAuthConfig
	hc       *http.Client
	tokens   TokenSource
	limiter  Limiter
	hosts    HostPolicy
	onReq    func(ctx context.Context, accountID, reason string)
	onUnpaid func(ctx context.Context, accountID string)
	log      *slog.Logger
	maxBody  int64
}

// NewClient returns a client; see Options for defaults.
func NewClient(o Options) *Client {
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: defaultHTTPTimeout}
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{oauth: o.OAuth, hc: &noRedirect, tokens: o.Tokens, limiter: o.Limiter, hosts: o.Hosts,
		onReq: o.OnNeedsReauth, onUnpaid: o.OnPaymentRequired, log: o.Logger, maxBody: o.MaxResponseBytes}
	if c.limiter == nil {
		c.limiter = NewLimiter()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	return c
}

// Hosts returns the client's host policy.
func (c *Client) Hosts() HostPolicy { return c.hosts }

// Response is a successful answer.
type Response struct {
	Status int // 200, 201, 202 or 204
	Body   []byte
}

// Do sends one API request for the account and returns the answer: the
// limiter's slot first, then the request with the stored access token; a
// 401 is answered by one refresh through the TokenSource and one retry.
// path starts with /api/v4/; query may be nil; body is JSON-encoded unless
// nil. A non-2xx answer is an *Error.
func (c *Client) Do(ctx context.Context, a Account, method, path string, query url.Values, body any) (*Response, error) {
	base, err := c.hosts.AccountBase(a.Host)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(path, "/api/v4/") || strings.Contains(path, "..") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("amocrm: invalid API path %q", path)
	}
	if c.tokens == nil {
		return nil, errors.New("amocrm: client has no token source")
	}
	var raw []byte
	if body != nil {
		if raw, err = encodeJSON(body); err != nil {
			return nil, fmt.Errorf("amocrm: %s %s: encode: %w", method, path, err)
		}
	}
	u := base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	tok, err := c.tokens.AccessToken(ctx, a.ID)
	if err != nil {
		return nil, fmt.Errorf("amocrm: %s %s: token: %w", method, path, err)
	}
	resp, err := c.send(ctx, a, method, path, u, tok, raw)
	if errors.Is(err, ErrPaymentRequired) && c.onUnpaid != nil {
		c.onUnpaid(context.WithoutCancel(ctx), a.ID)
	}
	if !errors.Is(err, ErrUnauthorized) {
		return resp, err
	}
	fresh, rerr := c.tokens.Refresh(ctx, a.ID, tok)
	if rerr != nil {
		return nil, fmt.Errorf("amocrm: %s %s: refresh after 401: %w", method, path, rerr)
	}
	resp, err = c.send(ctx, a, method, path, u, fresh, raw)
	if errors.Is(err, ErrUnauthorized) {
		// A token just issued is refused: the integration lost the account.
		// Refreshing on every call would only burn refresh tokens.
		if c.onReq != nil {
			c.onReq(context.WithoutCancel(ctx), a.ID, "access token refused right after refresh")
		}
		return nil, fmt.Errorf("%w: %w", ErrNeedsReauth, err)
	}
	return resp, err
}

// RateLimitRetries is how often one request refused with 429 is sent
// again, after RateLimitBackoff, then twice that, before the 429 goes to
// the caller (and the queue's backoff). amoCRM refuses such a request
// without doing anything, so a POST is as safe to repeat as a GET; and
// work that needs several calls (find the contacts, create the leads, add
// the notes) must not start over from the first call on every 429, or an
// account whose other integrations eat its budget would never see the
// last call.
const RateLimitRetries = 2

func (c *Client) send(ctx context.Context, a Account, method, path, u, tok string, body []byte) (*Response, error) {
	wait := RateLimitBackoff
	for try := 0; ; try++ {
		resp, err := c.sendOnce(ctx, a, method, path, u, tok, body)
		if try >= RateLimitRetries || !errors.Is(err, ErrRateLimited) {
			return resp, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait *= 2
	}
}

func (c *Client) sendOnce(ctx context.Context, a Account, method, path, u, tok string, body []byte) (*Response, error) {
	if err := c.limiter.Wait(ctx, a.ID); err != nil {
		return nil, fmt.Errorf("amocrm: %s %s: rate limiter: %w", method, path, err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("amocrm: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/hal+json, application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("amocrm: %s %s: %w", method, path, crmhttp.StripURL(err))
	}
	defer resp.Body.Close()
	data, rerr := crmhttp.ReadCapped(resp.Body, c.maxBody)
	c.log.DebugContext(ctx, "amocrm call", "account", a.ID, "method", method, "path", path,
		"status", resp.StatusCode, "duration", time.Since(start), "request_id", resp.Header.Get("X-Request-Id"))
	op := method + " " + path
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, parseError(op, resp.StatusCode, resp.Header, data)
	}
	if rerr != nil {
		return nil, fmt.Errorf("amocrm: %s: %w", op, rerr)
	}
	return &Response{Status: resp.StatusCode, Body: data}, nil
}

// getJSON GETs path and decodes the answer into out; found is false on 204
// (amoCRM's "nothing": an empty list or an unknown id).
func (c *Client) getJSON(ctx context.Context, a Account, path string, q url.Values, out any) (found bool, err error) {
	resp, err := c.Do(ctx, a, http.MethodGet, path, q, nil)
	if err != nil {
		return false, err
	}
	if resp.Status == http.StatusNoContent || len(bytes.TrimSpace(resp.Body)) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return false, fmt.Errorf("amocrm: GET %s: decode: %w", path, err)
	}
	return true, nil
}

// sendJSON sends body with method and decodes the answer into out (which
// may be nil).
func (c *Client) sendJSON(ctx context.Context, a Account, method, path string, body, out any) error {
	resp, err := c.Do(ctx, a, method, path, nil, body)
	if err != nil {
		return err
	}
	if out == nil || resp.Status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("amocrm: %s %s: decode: %w", method, path, err)
	}
	return nil
}

// halPage is one page of a HAL list.
type halPage struct {
	Page     int                              `json:"_page"`
	Links    map[string]struct{ Href string } `json:"_links"`
	Embedded map[string]json.RawMessage       `json:"_embedded"`
}

// List pages through a HAL list: GET path?query, then every _links.next,
// handing each item of _embedded[key] to each. A 204 ends the list (or is
// an empty one). The next link is followed only as a path and query on the
// account's own base: amoCRM writes the account's public host into it,
// and a link naming another host must never receive the token.
func (c *Client) List(ctx context.Context, a Account, path string, query url.Values, key string, each func(json.RawMessage) error) error {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	seen := map[string]bool{}
	for page := 0; page < maxPages; page++ {
		var p halPage
		found, err := c.getJSON(ctx, a, path, q, &p)
		if err != nil || !found {
			return err
		}
		var items []json.RawMessage
		if raw, ok := p.Embedded[key]; ok {
			if err := json.Unmarshal(raw, &items); err != nil {
				return fmt.Errorf("amocrm: GET %s: _embedded.%s: %w", path, key, err)
			}
		}
		for _, it := range items {
			if err := each(it); err != nil {
				return err
			}
		}
		next, ok := p.Links["next"]
		if !ok || next.Href == "" || len(items) == 0 {
			return nil
		}
		nu, err := url.Parse(next.Href)
		if err != nil || nu.Path != path {
			return fmt.Errorf("amocrm: GET %s: unusable _links.next %q", path, next.Href)
		}
		if seen[nu.RawQuery] {
			return fmt.Errorf("amocrm: GET %s: _links.next loops", path)
		}
		seen[nu.RawQuery] = true
		q = nu.Query()
	}
	return fmt.Errorf("amocrm: GET %s: more than %d pages", path, maxPages)
}

func encodeJSON(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
