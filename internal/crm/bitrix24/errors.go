package bitrix24

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNeedsReauth means the portal's tokens cannot be renewed any more
// (refresh token dead, app keys revoked, subscription over): nothing but an
// admin reinstalling or re-authorising the app brings the integration back,
// so retrying is pointless.
var ErrNeedsReauth = errors.New("bitrix24: portal needs re-authorisation")

// Error codes the client acts on. Bitrix24 is inconsistent about their case,
// so they are always compared with strings.EqualFold.
const (
	CodeExpiredToken       = "expired_token"
	CodeInvalidToken       = "invalid_token"
	CodeNoAuthFound        = "NO_AUTH_FOUND"
	CodeInvalidGrant       = "invalid_grant"
	CodeInvalidClient      = "invalid_client"
	CodeWrongClient        = "wrong_client"
	CodePaymentRequired    = "PAYMENT_REQUIRED"
	CodeQueryLimitExceeded = "QUERY_LIMIT_EXCEEDED"
	CodeOperationTimeLimit = "OPERATION_TIME_LIMIT"
	CodeOverloadLimit      = "OVERLOAD_LIMIT"
	CodePortalDeleted      = "PORTAL_DELETED"
)

// APIError is an error answer from a portal's REST API or from the OAuth
// server, including a failed batch sub-command (HTTPStatus 0 then) and
// imconnector.register's "HTTP 200, result.result=false" failure.
type APIError struct {
	HTTPStatus  int
	Code        string // as sent; compare with strings.EqualFold
	Description string

	// ResetAt is time.operating_reset_at from the error body, when it had
	// one: the moment an OPERATION_TIME_LIMIT block starts to lift.
	ResetAt time.Time

	// retryAfter is the server's own hint (Retry-After header, or
	// operating_reset_at measured against the server's clock), 0 if none.
	retryAfter time.Duration
	// wrapped lets errors.Is see ErrNeedsReauth through an APIError.
	wrapped error
}

func (e *APIError) Error() string {
	var b strings.Builder
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString("error")
	}
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.wrapped }

// Is reports whether e has the code of target, so callers can write
// errors.Is(err, &APIError{Code: "NOT_ACTIVE_LINE"}).
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	return ok && t.Code != "" && strings.EqualFold(e.Code, t.Code)
}

// HasCode reports whether e's code is one of codes, ignoring case.
func (e *APIError) HasCode(codes ...string) bool {
	for _, c := range codes {
		if strings.EqualFold(e.Code, c) {
			return true
		}
	}
	return false
}

func hasCode(err error, codes ...string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.HasCode(codes...)
}

// IsExpiredToken reports a 401 expired_token: refresh and retry once.
func IsExpiredToken(err error) bool { return hasCode(err, CodeExpiredToken) }

// IsInvalidToken reports a 401 invalid_token (unknown or revoked access
// token): worth one refresh, after which it means re-authorisation.
func IsInvalidToken(err error) bool { return hasCode(err, CodeInvalidToken) }

// IsRateLimited reports an answer that asks to slow down and try again
// later: the portal's leaky bucket, the per-method time budget, a manual
// block, or a server-side (5xx) failure other than a deleted portal.
func IsRateLimited(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	if ae.HasCode(CodeQueryLimitExceeded, CodeOperationTimeLimit, CodeOverloadLimit) {
		return true
	}
	if ae.HasCode(CodePortalDeleted) {
		return false
	}
	return ae.HTTPStatus == http.StatusTooManyRequests || ae.HTTPStatus >= 500
}

// IsOutage reports an answer of a portal that is down or cut off behind
// its proxy: 502, 503 or 504 carrying none of the rate-limit codes
// (QUERY_LIMIT_EXCEEDED itself comes as a 503) and not a deleted portal.
// Work waits such an outage out without spending attempts; a plain 500
// is not one (a request that trips a bug must still dead-letter).
func IsOutage(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.HasCode(CodeQueryLimitExceeded, CodeOperationTimeLimit, CodeOverloadLimit, CodePortalDeleted) {
		return false
	}
	switch ae.HTTPStatus {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// IsReauthRequired reports that the integration cannot work until an admin
// re-authorises (or pays for) the app: retries will not help.
func IsReauthRequired(err error) bool {
	return errors.Is(err, ErrNeedsReauth) ||
		hasCode(err, CodeInvalidGrant, CodeInvalidClient, CodeWrongClient, CodePaymentRequired)
}

// isReauthCode is the subset of codes that, coming from the OAuth server,
// mean the stored refresh token will never work again.
func isReauthCode(code string) bool {
	for _, c := range []string{CodeInvalidGrant, CodeInvalidClient, CodeWrongClient, CodePaymentRequired} {
		if strings.EqualFold(code, c) {
			return true
		}
	}
	return false
}

// Backoff hints used when the server gives none. They are floors for the
// caller's own (exponential) backoff, not a schedule.
const (
	queryLimitBackoff = 2 * time.Second // the bucket drains 2 requests/s
	operationBackoff  = time.Minute     // the time budget moves in one-minute buckets
	overloadBackoff   = 5 * time.Minute // a manual block by Bitrix24 support
	serverBackoff     = 5 * time.Second
	maxRetryAfter     = 15 * time.Minute
)

// RetryAfter returns how long to wait before retrying err, or 0 when err is
// not a rate-limit or server error. For OPERATION_TIME_LIMIT it follows
// time.operating_reset_at when the answer had it.
func RetryAfter(err error) time.Duration {
	var ae *APIError
	if !errors.As(err, &ae) || !IsRateLimited(err) {
		return 0
	}
	if ae.retryAfter > 0 {
		return min(max(ae.retryAfter, time.Second), maxRetryAfter)
	}
	switch {
	case ae.HasCode(CodeQueryLimitExceeded):
		return queryLimitBackoff
	case ae.HasCode(CodeOperationTimeLimit):
		return operationBackoff
	case ae.HasCode(CodeOverloadLimit):
		return overloadBackoff
	case ae.HTTPStatus == http.StatusTooManyRequests:
		return operationBackoff
	default:
		return serverBackoff
	}
}

// errorBody is the error shape shared by the portal and the OAuth server.
type errorBody struct {
	Error            json.RawMessage `json:"error"`
	ErrorDescription json.RawMessage `json:"error_description"`
	Time             *Timing         `json:"time"`
}

// parseAPIError builds the error for a failed answer. A body that is not the
// JSON error shape still gives an APIError carrying the status and a short,
// printable excerpt. Every string in redact (tokens, secrets) is cut out of
// that excerpt first, in case a proxy's error page echoes the request URL.
func parseAPIError(status int, body []byte, header http.Header, now time.Time, redact ...string) *APIError {
	ae := &APIError{HTTPStatus: status}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err == nil && (eb.Error != nil || eb.ErrorDescription != nil) {
		ae.Code = rawString(eb.Error)
		ae.Description = rawString(eb.ErrorDescription)
		if eb.Time != nil && eb.Time.OperatingResetAt > 0 {
			ae.ResetAt = time.Unix(eb.Time.OperatingResetAt, 0)
			// Measure against the server's own clock when it told us the
			// time, so a skewed local clock does not stretch the wait.
			ref := now
			if eb.Time.Finish > 0 {
				ref = time.Unix(0, int64(eb.Time.Finish*float64(time.Second)))
			}
			if d := ae.ResetAt.Sub(ref); d > 0 {
				ae.retryAfter = d
			}
		}
	} else {
		ae.Description = excerpt(body, header.Get("Content-Type"), redact)
	}
	if ae.retryAfter == 0 {
		ae.retryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	}
	return ae
}

// rawString turns a JSON value into text: strings unquoted, null as empty,
// anything else (an old method's odd error object) as compact JSON.
func rawString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return string(raw)
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

const excerptLen = 200

// excerpt describes a non-JSON error body in one short line.
func excerpt(body []byte, contentType string, redact []string) string {
	s := string(body)
	for _, r := range redact {
		if r != "" {
			s = strings.ReplaceAll(s, r, "[redacted]")
		}
	}
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) > excerptLen {
		cut := excerptLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if contentType == "" {
		contentType = "no content type"
	}
	if s == "" {
		return "non-JSON error response (" + contentType + ", empty body)"
	}
	return "non-JSON error response (" + contentType + "): " + s
}

// nestedResultError spots the failure shape of imconnector.register and
// imconnector.unregister: HTTP 200 with {"result":{"result":false,"error":…}}.
// Other methods only count when "error" is present, so a method that
// legitimately returns an object with result=false is left alone.
func nestedResultError(method string, result json.RawMessage) *APIError {
	if len(result) == 0 || result[0] != '{' {
		return nil
	}
	var r struct {
		Result           json.RawMessage `json:"result"`
		Error            json.RawMessage `json:"error"`
		ErrorDescription json.RawMessage `json:"error_description"`
	}
	if json.Unmarshal(result, &r) != nil || string(r.Result) != "false" {
		return nil
	}
	quirky := strings.EqualFold(method, "imconnector.register") || strings.EqualFold(method, "imconnector.unregister")
	if r.Error == nil && !quirky {
		return nil
	}
	ae := &APIError{HTTPStatus: http.StatusOK, Code: rawString(r.Error), Description: rawString(r.ErrorDescription)}
	if ae.Code == "" && ae.Description == "" {
		ae.Description = method + " answered result=false"
	}
	return ae
}
