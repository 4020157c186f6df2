package bitrix24

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/routing"
)

func TestParseAPIErrorFixtures(t *testing.T) {
	tests := []struct {
		fixture                   string
		status                    int
		code                      string
		expired, invalid, limited bool
		reauth                    bool
	}{
		{fixture: "error-expired-token.json", status: 401, code: "expired_token", expired: true},
		{fixture: "error-invalid-token.json", status: 401, code: "invalid_token", invalid: true},
		{fixture: "error-not-active-line.json", status: 400, code: "NOT_ACTIVE_LINE"},
		{fixture: "error-operation-time-limit.json", status: 429, code: "OPERATION_TIME_LIMIT", limited: true},
		{fixture: "error-query-limit-exceeded.json", status: 503, code: "QUERY_LIMIT_EXCEEDED", limited: true},
		{fixture: "error-wrong-auth-type.json", status: 403, code: "WRONG_AUTH_TYPE"},
		{fixture: "oauth-token-error-invalid-grant.json", status: 400, code: "invalid_grant", reauth: true},
		{fixture: "oauth-token-error-payment-required.json", status: 402, code: "PAYMENT_REQUIRED", reauth: true},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, tt.fixture)
			var want struct{ Error, Error_description string }
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatal(err)
			}
			ae := parseAPIError(tt.status, body, http.Header{}, time.Now())
			if ae.HTTPStatus != tt.status || ae.Code != tt.code || ae.Description != want.Error_description {
				t.Errorf("got %+v", ae)
			}
			// Seen through wrapping, as callers get it.
			err := fmt.Errorf("bitrix24: crm.lead.add: %w", ae)
			if IsExpiredToken(err) != tt.expired || IsInvalidToken(err) != tt.invalid ||
				IsRateLimited(err) != tt.limited || IsReauthRequired(err) != tt.reauth {
				t.Errorf("expired=%v invalid=%v limited=%v reauth=%v", IsExpiredToken(err), IsInvalidToken(err),
					IsRateLimited(err), IsReauthRequired(err))
			}
			if (RetryAfter(err) > 0) != tt.limited {
				t.Errorf("RetryAfter = %v", RetryAfter(err))
			}
			if !strings.Contains(err.Error(), tt.code) || !strings.Contains(err.Error(), want.Error_description) {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestParseAPIErrorCaseInsensitive(t *testing.T) {
	tests := []struct {
		body string
		is   func(error) bool
	}{
		{`{"error":"EXPIRED_TOKEN","error_description":"The access token provided has expired"}`, IsExpiredToken},
		{`{"error":"Invalid_Token"}`, IsInvalidToken},
		{`{"error":"query_limit_exceeded","error_description":"Too many requests"}`, IsRateLimited},
		{`{"error":"overload_limit"}`, IsRateLimited},
		{`{"error":"INVALID_GRANT"}`, IsReauthRequired},
		{`{"error":"payment_required"}`, IsReauthRequired},
	}
	for _, tt := range tests {
		ae := parseAPIError(400, []byte(tt.body), http.Header{}, time.Now())
		if !tt.is(ae) {
			t.Errorf("%s not recognised", tt.body)
		}
	}
	ae := parseAPIError(400, []byte(`{"error":"not_active_line"}`), http.Header{}, time.Now())
	if !errors.Is(fmt.Errorf("x: %w", ae), &APIError{Code: "NOT_ACTIVE_LINE"}) {
		t.Error("errors.Is by code failed")
	}
	if errors.Is(ae, &APIError{Code: "ERROR_ARGUMENT"}) {
		t.Error("errors.Is matched another code")
	}
}

func TestParseAPIErrorOddBodies(t *testing.T) {
	const token = "d0f3e46700738a2b0062d5a9"
	tests := []struct {
		name     string
		status   int
		body     string
		ctype    string
		code     string
		desc     string // substring
		limited  bool
		noDetail string // must not appear
	}{
		{name: "html", status: 502, body: "<html>\n<body>Bad   Gateway for /rest/x.json?auth=" + token + "</body></html>",
			ctype: "text/html", desc: "non-JSON error response (text/html): <html> <body>Bad Gateway", limited: true, noDetail: token},
		{name: "empty", status: 500, body: "", desc: "empty body", limited: true},
		{name: "portal deleted", status: 500, body: `{"error":"PORTAL_DELETED","error_description":"Portal was deleted"}`, code: "PORTAL_DELETED", desc: "Portal was deleted"},
		{name: "description only", status: 400, body: `{"error":"","error_description":"Not found"}`, desc: "Not found"},
		{name: "error object", status: 400, body: `{"error":{"x":1},"error_description":"odd"}`, code: `{"x":1}`, desc: "odd"},
		{name: "long", status: 503, body: strings.Repeat("я", 500), desc: "…", limited: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.ctype != "" {
				h.Set("Content-Type", tt.ctype)
			}
			ae := parseAPIError(tt.status, []byte(tt.body), h, time.Now(), token)
			if ae.Code != tt.code || !strings.Contains(ae.Description, tt.desc) || ae.HTTPStatus != tt.status {
				t.Errorf("got %+v", ae)
			}
			if IsRateLimited(ae) != tt.limited {
				t.Errorf("IsRateLimited = %v", IsRateLimited(ae))
			}
			if tt.noDetail != "" && strings.Contains(ae.Error(), tt.noDetail) {
				t.Errorf("Error() leaks %q: %s", tt.noDetail, ae.Error())
			}
			if len(ae.Description) > excerptLen+100 {
				t.Errorf("description %d bytes long", len(ae.Description))
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Unix(1767094600, 0)
	tests := []struct {
		name   string
		status int
		body   string
		header string
		want   time.Duration
	}{
		{"operation limit, server clock", 429,
			`{"error":"OPERATION_TIME_LIMIT","time":{"finish":1767094500.5,"operating_reset_at":1767094542}}`, "", 41500 * time.Millisecond},
		{"operation limit, local clock", 429,
			`{"error":"OPERATION_TIME_LIMIT","time":{"operating_reset_at":1767094690}}`, "", 90 * time.Second},
		{"operation limit, reset as string", 429,
			`{"error":"OPERATION_TIME_LIMIT","time":{"operating_reset_at":"1767094630"}}`, "", 30 * time.Second},
		{"operation limit, no time", 429, `{"error":"OPERATION_TIME_LIMIT"}`, "", operationBackoff},
		{"operation limit, reset passed", 429,
			`{"error":"OPERATION_TIME_LIMIT","time":{"operating_reset_at":1767094000}}`, "", operationBackoff},
		{"query limit", 503, `{"error":"QUERY_LIMIT_EXCEEDED"}`, "", queryLimitBackoff},
		{"query limit with Retry-After", 503, `{"error":"QUERY_LIMIT_EXCEEDED"}`, "7", 7 * time.Second},
		{"overload", 503, `{"error":"OVERLOAD_LIMIT"}`, "", overloadBackoff},
		{"5xx", 500, `{"error":"INTERNAL_SERVER_ERROR"}`, "", serverBackoff},
		{"huge hint is capped", 503, `{"error":"QUERY_LIMIT_EXCEEDED"}`, "86400", maxRetryAfter},
		{"not retryable", 400, `{"error":"ERROR_ARGUMENT"}`, "", 0},
		{"portal deleted", 500, `{"error":"PORTAL_DELETED"}`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Retry-After", tt.header)
			}
			err := fmt.Errorf("wrapped: %w", parseAPIError(tt.status, []byte(tt.body), h, now))
			if got := RetryAfter(err); got != tt.want {
				t.Errorf("RetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
	if RetryAfter(errors.New("plain")) != 0 || RetryAfter(nil) != 0 {
		t.Error("RetryAfter of a non-API error")
	}
	ae := parseAPIError(429, []byte(`{"error":"OPERATION_TIME_LIMIT","time":{"operating_reset_at":1767094690}}`), http.Header{}, now)
	if !ae.ResetAt.Equal(time.Unix(1767094690, 0)) {
		t.Errorf("ResetAt = %v", ae.ResetAt)
	}
}

func TestNestedResultError(t *testing.T) {
	tests := []struct {
		method, result string
		code           string
		isErr          bool
	}{
		{"imconnector.register", `{"result":true}`, "", false},
		{"imconnector.register", `{"result":false,"error":"ICON_REQUIRED","error_description":"no icon"}`, "ICON_REQUIRED", true},
		{"imconnector.unregister", `{"result":false}`, "", true},
		{"some.method", `{"result":false}`, "", false},
		{"some.method", `{"result":false,"error":"X"}`, "X", true},
		{"imconnector.register", `true`, "", false},
		{"imconnector.register", `[]`, "", false},
	}
	for _, tt := range tests {
		ae := nestedResultError(tt.method, json.RawMessage(tt.result))
		if (ae != nil) != tt.isErr || (ae != nil && ae.Code != tt.code) {
			t.Errorf("%s %s: %+v", tt.method, tt.result, ae)
		}
	}
}

func TestIsReauthRequiredSentinel(t *testing.T) {
	if !IsReauthRequired(fmt.Errorf("x: %w", ErrNeedsReauth)) {
		t.Error("sentinel not recognised")
	}
	if IsReauthRequired(errors.New("x")) || IsRateLimited(errors.New("x")) || IsExpiredToken(nil) {
		t.Error("plain error classified")
	}
}

// A portal answering 502/503/504 is down: Classify marks it
// routing.ErrUnavailable (the job waits, attempts unspent), cause kept.
// QUERY_LIMIT_EXCEEDED and the other limits come with the same statuses
// but are rate limits (retried after their delay), and a plain 500 keeps
// the queue's backoff, so a request that trips a bug still dead-letters.
func TestClassifyOutage(t *testing.T) {
	s := &Service{}
	for _, c := range []struct {
		status  int
		code    string
		outage  bool
		limited bool
	}{
		{http.StatusBadGateway, "", true, false},
		{http.StatusServiceUnavailable, "", true, false},
		{http.StatusGatewayTimeout, "", true, false},
		{http.StatusServiceUnavailable, "INTERNAL_SERVER_ERROR", true, false},
		{http.StatusServiceUnavailable, CodeQueryLimitExceeded, false, true},
		{http.StatusServiceUnavailable, CodeOverloadLimit, false, true},
		{http.StatusTooManyRequests, CodeOperationTimeLimit, false, true},
		{http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", false, true},
		{http.StatusInternalServerError, "", false, true},
	} {
		ae := &APIError{HTTPStatus: c.status, Code: c.code}
		got := s.classify(fmt.Errorf("call: %w", ae))
		if errors.Is(got, routing.ErrUnavailable) != c.outage || IsOutage(ae) != c.outage {
			t.Errorf("%d %s: classified %v; outage want %v", c.status, c.code, got, c.outage)
		}
		if !errors.Is(got, ae) {
			t.Errorf("%d %s: cause lost: %v", c.status, c.code, got)
		}
		if !c.outage && c.limited && RetryAfter(got) == 0 {
			t.Errorf("%d %s: no retry delay", c.status, c.code)
		}
	}
}
