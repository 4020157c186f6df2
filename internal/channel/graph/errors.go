package graph

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/internal/channel"
)

// maxErrorText bounds how much of a non-JSON error body ends up in a
// SendError message: enough to recognise a proxy page, not a whole one.
const maxErrorText = 256

// IsRetryableCode reports whether a Graph error code means "not now":
// throttling or a transient failure on Meta's side. Rate limits must be
// retried later, never failed, or a burst would lose messages.
func IsRetryableCode(code int) bool {
	switch code {
	case 1, // API unknown: "possibly a temporary issue"
		2,      // API service temporarily unavailable
		4,      // application request limit
		17,     // user request limit
		32,     // page request limit
		341,    // application limit reached
		613,    // calls exceeded rate limit
		80007,  // WABA rate limit
		130429, // Cloud API throughput
		131000, // something went wrong
		131016, // service unavailable
		131048, // spam rate limit
		131056, // business/consumer pair rate limit
		131057: // account in maintenance
		return true
	}
	return false
}

// IsChannelErrorCode reports whether a Graph error code means the channel's
// credentials no longer work, so every further send would fail the same way.
func IsChannelErrorCode(code int) bool {
	return code == 190 || code == 0
}

// Classify decides what the queue does about a refused call. The error code
// wins over the HTTP status because Meta answers most errors with 400;
// codeKnown is false when the body carried no error code at all, so an
// unexplained 4xx is not mistaken for code 0 (an auth failure).
func Classify(httpStatus, code int, codeKnown bool) channel.Outcome {
	switch {
	case codeKnown && IsRetryableCode(code):
		return channel.OutcomeRetry
	case codeKnown && IsChannelErrorCode(code):
		return channel.OutcomeChannelError
	case httpStatus == http.StatusUnauthorized:
		return channel.OutcomeChannelError
	case httpStatus >= 500, httpStatus == http.StatusTooManyRequests:
		return channel.OutcomeRetry
	}
	// 131047, 131026, 10/2534022, 551, 100, 131008/9, 1320xx, 131049/50 and
	// any other 4xx: the same request would be refused again.
	return channel.OutcomeFailed
}

type errorBody struct {
	Error *struct {
		Message      string     `json:"message"`
		Code         *FlexInt   `json:"code"`
		ErrorSubcode FlexInt    `json:"error_subcode"`
		ErrorUserMsg string     `json:"error_user_msg"`
		ErrorData    *ErrorData `json:"error_data"`
	} `json:"error"`
}

// ErrorData is the error_data of a Graph error or a webhook error. It is an
// object on WhatsApp, but older Graph endpoints send it as a JSON-encoded
// string; both are accepted, and a detail that fits neither is dropped
// rather than losing the whole error.
type ErrorData struct {
	Details string
}

func (d *ErrorData) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		b = []byte(s)
	}
	var obj struct {
		Details string `json:"details"`
	}
	if json.Unmarshal(b, &obj) == nil {
		d.Details = obj.Details
	} else {
		d.Details = s
	}
	return nil
}

// ParseError turns a non-2xx Graph response into a classified SendError. It
// never fails: a body that is not a Graph error still yields a SendError
// whose message is the start of the body.
func ParseError(httpStatus int, body []byte, retryAfterHeader string) *channel.SendError {
	se := &channel.SendError{HTTPStatus: httpStatus, RetryAfter: parseRetryAfter(retryAfterHeader, time.Now())}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		e := eb.Error
		se.Err = channel.ProviderError{
			Subcode: int(e.ErrorSubcode),
			Message: cmp.Or(e.Message, e.ErrorUserMsg),
		}
		if e.Code != nil {
			se.Err.Code = int(*e.Code)
		}
		if e.ErrorData != nil {
			se.Err.Details = e.ErrorData.Details
		}
		se.Outcome = Classify(httpStatus, se.Err.Code, e.Code != nil)
		return se
	}
	se.Err.Message = truncate(strings.TrimSpace(string(body)), maxErrorText)
	if se.Err.Message == "" {
		se.Err.Message = http.StatusText(httpStatus)
	}
	se.Outcome = Classify(httpStatus, 0, false)
	return se
}

// Invalid is a send refused before reaching Meta because the message cannot
// be expressed for this messenger. Retrying would not help, so it fails.
func Invalid(msg string) *channel.SendError {
	return &channel.SendError{Outcome: channel.OutcomeFailed, Err: channel.ProviderError{Message: msg}}
}

// parseRetryAfter reads delay-seconds or an HTTP date; zero when absent,
// unparseable or already past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Cap so a silly header cannot overflow or park a job for years.
		return min(time.Duration(secs)*time.Second, 24*time.Hour)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "")
	}
	s = s[:n]
	// Do not cut a multi-byte character in half.
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// Misconfigured is a call refused before reaching Meta because the channel
// itself lacks something (its account id); it puts the channel in error.
func Misconfigured(msg string) *channel.SendError {
	return &channel.SendError{Outcome: channel.OutcomeChannelError, Err: channel.ProviderError{Message: msg}}
}

// Refused reports whether err is Graph refusing a call for good (an object
// that does not exist or the token may not read, a bad or expired token, a
// missing permission), as opposed to not answering (network, throttling,
// a 5xx), which proves nothing.
func Refused(err error) bool {
	var se *channel.SendError
	return errors.As(err, &se) && se.Outcome != channel.OutcomeRetry
}
