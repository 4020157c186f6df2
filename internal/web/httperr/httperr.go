// Package httperr is the one place a fault.Kind becomes an HTTP status.
// It is its own package, under web, because a few handlers outside web
// still write their answers themselves (a CRM's install, event and page
// handlers, which it mounts on plain net/http): they take their statuses
// from here, so the mapping is not repeated and no domain package names
// a status.
package httperr

import (
	"encoding/json"
	"net/http"

	"github.com/switchboard/switchboard/internal/fault"
)

// Status is the HTTP status for a kind; an unknown kind is a 500, so a
// kind added without a status fails loudly rather than as a success.
func Status(k fault.Kind) int {
	switch k {
	case fault.Malformed:
		return http.StatusBadRequest
	case fault.Invalid:
		return http.StatusUnprocessableEntity
	case fault.Unauthorized:
		return http.StatusUnauthorized
	case fault.Forbidden:
		return http.StatusForbidden
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.TooLarge:
		return http.StatusRequestEntityTooLarge
	case fault.Upstream:
		return http.StatusBadGateway
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// internal is what anything that is not a *fault.Error is answered as:
// its text may name our addresses and types, so it goes to logs only.
var internal = fault.Error{Kind: fault.Internal, Code: "internal", Message: "internal error"}

// Of is err as a *fault.Error and its status; anything else is the
// generic internal error, and ok is false so the caller logs it.
func Of(err error) (fe *fault.Error, status int, ok bool) {
	if fe = fault.As(err); fe != nil {
		return fe, Status(fe.Kind), true
	}
	e := internal
	return &e, http.StatusInternalServerError, false
}

// WriteJSON answers {"error":{"code","message"}} with err's status,
// and "field" when the error names the value to blame.
func WriteJSON(w http.ResponseWriter, err error) {
	fe, status, _ := Of(err)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	// An encoding failure means the client went away; the status is out.
	body := map[string]string{"code": fe.Code, "message": fe.Message}
	if fe.Field != "" {
		body["field"] = fe.Field
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}
