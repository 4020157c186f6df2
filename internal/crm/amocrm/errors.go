package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
)

// Sentinels an *Error matches with errors.Is, by HTTP status.
var (
	// ErrUnauthorized: 401, the token is missing, expired or revoked.
	ErrUnauthorized = errors.New("amocrm: unauthorized")
	// ErrPaymentRequired: 402, the account's subscription is not paid; the
	// API is unusable until it is, so work waits for hours.
	ErrPaymentRequired = errors.New("amocrm: account not paid")
	// ErrForbidden: 403, no rights, or the account is blocked for abusing
	// the rate limit.
	ErrForbidden = errors.New("amocrm: forbidden")
	// ErrNotFound: 404.
	ErrNotFound = errors.New("amocrm: not found")
	// ErrRateLimited: 429.
	ErrRateLimited = errors.New("amocrm: too many requests")
	// ErrServer: any 5xx.
	ErrServer = errors.New("amocrm: server error")
	// ErrValidation: 400 with validation-errors.
	ErrValidation = errors.New("amocrm: validation failed")
	// ErrNeedsReauth: only the account's admin installing again helps (the
	// refresh token was refused, or a fresh token is refused too).
	ErrNeedsReauth = errors.New("amocrm: re-authorisation required")
	// ErrInvalidHost: an account host that is not amoCRM's or Kommo's (or
	// the configured test base).
	ErrInvalidHost = errors.New("amocrm: invalid account host")
)

// Backoffs the classification asks the queue for.
const (
	// RateLimitBackoff: amoCRM sends no Retry-After with 429 (contract
	// §2.4); one second lets the 7 rps window pass.
	RateLimitBackoff = time.Second
	// PaymentProbeInterval: how often an unpaid account is asked whether
	// it was paid (GET /api/v4/account, unpaid.go), and how long a job
	// refused with 402 waits before it looks at the integration again
	// (parked while it is unpaid).
	PaymentProbeInterval = 10 * time.Minute
)

// Error is a failed answer from amoCRM: the HTTP status and, when the body
// was problem+json, its fields. Token endpoint refusals carry Hint.
type Error struct {
	Status     int
	Title      string
	Type       string
	Detail     string
	Hint       string
	Validation []ValidationError
	// Op is "METHOD /path" of the request (no query: it may carry search
	// text).
	Op string
	// RequestID is amoCRM's X-Request-Id, for support.
	RequestID string
	// Grant marks an answer of the token endpoint.
	Grant bool
}

// ValidationError lists what was wrong with one item of a batch; RequestID
// is the item's request_id (its index as a string when none was sent).
type ValidationError struct {
	RequestID string       `json:"request_id"`
	Errors    []FieldError `json:"errors"`
}

// FieldError is one problem with one field.
type FieldError struct {
	Code   string `json:"code"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

// Error says what failed, with every validation error.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "amocrm: %s: HTTP %d", e.Op, e.Status)
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	for _, v := range e.Validation {
		for _, f := range v.Errors {
			fmt.Fprintf(&b, "; item %s: %s %s: %s", v.RequestID, f.Path, f.Code, f.Detail)
		}
	}
	return b.String()
}

// Is matches the sentinels by status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized && !e.Grant
	case ErrPaymentRequired:
		return e.Status == http.StatusPaymentRequired
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrServer:
		return e.Status >= 500
	case ErrValidation:
		return e.Status == http.StatusBadRequest && len(e.Validation) > 0
	case ErrNeedsReauth:
		// Any refusal of a grant but a rate limit or an outage: amoCRM says
		// 400 (sometimes 401) for spent, revoked and expired tokens alike.
		return e.Grant && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests
	}
	return false
}

// Item returns the validation errors of the item with this request_id.
func (e *Error) Item(requestID string) []FieldError {
	for _, v := range e.Validation {
		if v.RequestID == requestID {
			return v.Errors
		}
	}
	return nil
}

// ItemErrors returns the per-item validation errors of err, keyed by
// request_id; nil when err carries none.
func ItemErrors(err error) map[string][]FieldError {
	var e *Error
	if !errors.As(err, &e) || len(e.Validation) == 0 {
		return nil
	}
	out := make(map[string][]FieldError, len(e.Validation))
	for _, v := range e.Validation {
		out[v.RequestID] = append(out[v.RequestID], v.Errors...)
	}
	return out
}

// parseError builds an *Error from a non-2xx answer. A body that is not
// problem JSON (the 429 of nginx, an HTML 502) still classifies by status.
func parseError(op string, status int, h http.Header, body []byte) *Error {
	e := &Error{Status: status, Op: op, RequestID: h.Get("X-Request-Id")}
	var p struct {
		Title      string            `json:"title"`
		Type       string            `json:"type"`
		Detail     string            `json:"detail"`
		Hint       string            `json:"hint"`
		Validation []ValidationError `json:"validation-errors"`
	}
	if json.Unmarshal(body, &p) == nil {
		e.Title, e.Type, e.Detail, e.Hint, e.Validation = p.Title, p.Type, p.Detail, p.Hint, p.Validation
	}
	if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	return e
}

// Retryable reports whether trying the same request later may succeed: a
// rate limit, a server error or a failure to reach amoCRM at all. A
// refused grant, a validation error or an unpaid account is not (the last
// waits for hours; see Classify).
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrRateLimited) || errors.Is(err, ErrServer) {
		return true
	}
	var e *Error
	if errors.As(err, &e) || errors.Is(err, ErrNeedsReauth) || errors.Is(err, ErrInvalidHost) {
		return false
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Permanent reports whether the request itself is wrong, so repeating it
// can never help: a validation error, 400, 403 (rights), 404, 405, 422.
func Permanent(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Grant {
		return false
	}
	switch e.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// NeedsReauth reports whether only the admin installing again helps.
func NeedsReauth(err error) bool { return errors.Is(err, ErrNeedsReauth) }

// Outage reports an answer of amoCRM that is down or cut off behind its
// proxy (502, 503, 504): work waits it out without spending attempts. A
// plain 500 is not one (a request that trips a bug must still
// dead-letter).
func Outage(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Signals tells crm.Classify what amoCRM's errors mean: a refused grant
// parks the integration's work; 429 is retried after RateLimitBackoff;
// 502/503/504 and network errors wait for amoCRM without spending
// attempts; another 5xx goes to the queue's own backoff. (402 is Classify's:
// the work is parked while the account is unpaid.)
func Signals() crm.Signals {
	return crm.Signals{
		NeedsReauth: NeedsReauth,
		Outage:      Outage,
		RetryAfter: func(err error) time.Duration {
			switch {
			case errors.Is(err, ErrRateLimited):
				return RateLimitBackoff
			}
			return 0
		},
	}
}

// Classify turns a failed call into what the queue does with its job; see
// Signals. A 402 parks the job (routing.ErrParked, the 402 still in the
// chain) for PaymentProbeInterval: the client has marked the integration
// unpaid (unpaid.go), so the job then finds it parked until the account
// is paid and the probe resumes the work.
func Classify(err error) error {
	if errors.Is(err, ErrPaymentRequired) {
		return queue.RetryAfter(PaymentProbeInterval, fmt.Errorf("%w: %w", routing.ErrParked, err))
	}
	return crm.Classify(err, Signals())
}
