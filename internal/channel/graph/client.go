// Package graph holds what the WhatsApp and Instagram senders share about
// Meta's Graph API: webhook signatures, the error body and how to classify
// it, and a small JSON client that keeps tokens out of errors.
package graph

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
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
)

const (
	// DefaultBaseURL serves WhatsApp and Instagram with Facebook Login;
	// Instagram with Instagram Login uses https://graph.instagram.com.
	DefaultBaseURL = "https://graph.facebook.com"
	DefaultVersion = "v25.0"

	// MaxJSONBytes caps any JSON response read from Graph; real ones are a
	// few hundred bytes, so more means something is wrong.
	MaxJSONBytes = 1 << 20
)

// Client calls the Graph API with a bearer token. It holds no credentials:
// each call gets the token of the channel it acts for. Safe for concurrent
// use.
type Client struct {
	baseURL string
	version string
	hc      *http.Client
}

// NewClient returns a client for baseURL (e.g. DefaultBaseURL or a
// simulator) and API version ("v25.0"). An empty baseURL or version takes
// the default; a nil hc gets a plain client with a 30s timeout, though the
// gateway should pass its own shared, guarded client.
func NewClient(baseURL, version string, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if version == "" {
		version = DefaultVersion
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), version: strings.Trim(version, "/"), hc: hc}
}

// Endpoint is the absolute URL of a path below the version segment.
func (c *Client) Endpoint(path string) string {
	return c.baseURL + "/" + c.version + "/" + strings.TrimLeft(path, "/")
}

// PostJSON posts in as JSON to path (relative to the version) and decodes a
// 2xx answer into out, which may be nil. A non-2xx answer is returned as a
// *channel.SendError; anything else (network, undecodable 2xx) as a plain
// error, which callers treat as retryable.
func (c *Client) PostJSON(ctx context.Context, token, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("graph: post %s: encode: %w", path, err)
	}
	return c.Do(ctx, http.MethodPost, token, path, nil, "application/json", bytes.NewReader(body), out)
}

// GetJSON is PostJSON's GET counterpart, with optional query parameters.
func (c *Client) GetJSON(ctx context.Context, token, path string, query url.Values, out any) error {
	return c.Do(ctx, http.MethodGet, token, path, query, "", nil, out)
}

// Do sends one request to path below the version segment. contentType is
// set only with a body.
func (c *Client) Do(ctx context.Context, method, token, path string, query url.Values, contentType string, body io.Reader, out any) error {
	op := strings.ToLower(method) + " " + path
	u := c.Endpoint(path)
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("graph: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	setToken(req, token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("graph: %s: %w", op, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := readCapped(resp.Body, MaxJSONBytes)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A truncated error body still classifies by status.
		return ParseError(resp.StatusCode, data, resp.Header.Get("Retry-After"))
	}
	if err != nil {
		return fmt.Errorf("graph: %s: read response: %w", op, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("graph: %s: decode response: %w", op, err)
	}
	return nil
}

// Download GETs an absolute URL and returns at most maxBytes of it. token
// may be empty for public CDN links; when set it is sent as a bearer token,
// so only pass URLs that came from Graph itself. A body larger than
// maxBytes gives channel.ErrTooLarge; a non-2xx status a *channel.SendError.
func (c *Client) Download(ctx context.Context, token, rawURL string, maxBytes int64) (*channel.Download, error) {
	op := "get " + redactURL(rawURL)
	if maxBytes <= 0 {
		return nil, fmt.Errorf("graph: %s: no size limit given", op)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", op, unwrapURLError(err))
	}
	setToken(req, token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", op, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := readCapped(resp.Body, MaxJSONBytes)
		return nil, ParseError(resp.StatusCode, data, resp.Header.Get("Retry-After"))
	}
	if resp.ContentLength > maxBytes {
		return nil, fmt.Errorf("graph: %s: %d bytes: %w", op, resp.ContentLength, channel.ErrTooLarge)
	}
	data, err := readCapped(resp.Body, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", op, err)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/octet-stream" {
		ct = "" // says nothing; let the caller's own idea of the type win
	}
	return &channel.Download{Data: data, MimeType: ct}, nil
}

// readCapped reads at most limit bytes and reports channel.ErrTooLarge,
// with what it read, when there was more.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return data, err
	}
	if int64(len(data)) > limit {
		return data[:limit], fmt.Errorf("more than %d bytes: %w", limit, channel.ErrTooLarge)
	}
	return data, nil
}

func setToken(req *http.Request, token string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}

// unwrapURLError drops *url.Error's copy of the URL: media links carry
// signed query strings, and the operation is already named by the caller.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL keeps scheme, host and path: enough to tell where a download
// failed, without the signed query of a CDN link.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
