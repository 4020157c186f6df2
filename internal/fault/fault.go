// Package fault is the one error type the core returns to whoever asked:
// a Kind that says what went wrong in general (the web layer alone turns
// it into an HTTP status), a Code that API clients and pages act on, and
// a Message written for the person reading the answer.
package fault

import (
	"errors"
	"fmt"
)

// Kind is what sort of refusal an Error is. The set is closed: a caller
// maps every Kind, and a new one is a change to that mapping.
type Kind string

// The kinds of refusal. Their comments name the HTTP status web answers
// with, for the reader; the mapping itself lives in internal/web/httperr.
const (
	// Malformed: the request cannot be read at all (400).
	Malformed Kind = "malformed"
	// Invalid: the request is readable but its content is refused (422).
	Invalid Kind = "invalid"
	// Unauthorized: the caller is not who it must be (401).
	Unauthorized Kind = "unauthorized"
	// Forbidden: the caller is known but may not do this (403).
	Forbidden Kind = "forbidden"
	// NotFound: no such thing, or none the caller may see (404).
	NotFound Kind = "not_found"
	// Conflict: the thing's state does not allow it (409).
	Conflict Kind = "conflict"
	// TooLarge: the request or what it names is too big (413).
	TooLarge Kind = "too_large"
	// Upstream: an outside service failed or answered nonsense (502).
	Upstream Kind = "upstream"
	// Unavailable: we cannot do it now; trying later may work (503).
	Unavailable Kind = "unavailable"
	// Internal: our failure; the message says nothing more (500).
	Internal Kind = "internal"
)

// Error is a refusal shown to the caller as is: Code and Message are the
// API's words, Err (optional) is the cause kept for logs and errors.Is.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Field is the JSON path of the refused value (e.g.
	// "owner.users[2].weight") when one value is to blame; "" otherwise.
	Field string
	Err   error
}

// Error is the code and message, then the cause if there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap gives the cause.
func (e *Error) Unwrap() error { return e.Err }

// New is a refusal without a cause.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Newf is New with a formatted message.
func Newf(kind Kind, code, format string, a ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, a...)}
}

// As finds the *Error in err's chain, or nil.
func As(err error) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

// CodeOf is the code of err's *Error, or "" when it carries none.
func CodeOf(err error) string {
	if fe := As(err); fe != nil {
		return fe.Code
	}
	return ""
}
