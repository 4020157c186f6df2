package b24sim

import (
	"fmt"
	"net/http"
)

// apiError is Bitrix24's error body {"error": CODE, "error_description": text}
// plus the HTTP status it travels with. The same shape serves the OAuth
// server and the portal REST API.
type apiError struct {
	status int
	Code   string `json:"error"`
	Desc   string `json:"error_description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("b24sim: %s (HTTP %d): %s", e.Code, e.status, e.Desc)
}

func newAPIError(status int, code, desc string) *apiError {
	return &apiError{status: status, Code: code, Desc: desc}
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// System errors (contract §2.3). Descriptions follow the fixtures where one
// exists.

func errNoAuth() *apiError {
	return newAPIError(http.StatusUnauthorized, "NO_AUTH_FOUND", "Wrong authorization data")
}

func errInvalidToken() *apiError {
	return newAPIError(http.StatusUnauthorized, "invalid_token", "The access token provided is invalid.")
}

func errExpiredToken() *apiError {
	return newAPIError(http.StatusUnauthorized, "expired_token", "The access token provided has expired.")
}

func errWebhookCredentials() *apiError {
	return newAPIError(http.StatusUnauthorized, "INVALID_CREDENTIALS", "Invalid request credentials")
}

func errQueryLimit() *apiError {
	return newAPIError(http.StatusServiceUnavailable, "QUERY_LIMIT_EXCEEDED", "Too many requests")
}

func errMethodNotFound() *apiError {
	return newAPIError(http.StatusNotFound, "ERROR_METHOD_NOT_FOUND", "Method not found!")
}

func errInsufficientScope() *apiError {
	return newAPIError(http.StatusForbidden, "insufficient_scope", "The request requires higher privileges than provided by the access token")
}

func errPaymentRequired(status int) *apiError {
	return newAPIError(status, "PAYMENT_REQUIRED", "Payment required")
}

func errArgument(desc string) *apiError {
	return newAPIError(http.StatusBadRequest, "ERROR_ARGUMENT", desc)
}

func errArgumentNull(name string) *apiError {
	return errArgument(fmt.Sprintf("Argument '%s' is null or empty", name))
}

func errCore(desc string) *apiError {
	return newAPIError(http.StatusBadRequest, "ERROR_CORE", desc)
}

// errLegacyCRM is how the old crm.* methods fail: an empty code with only a
// description (e.g. crm.deal.get for a missing id answers "Not found").
func errLegacyCRM(desc string) *apiError {
	return newAPIError(http.StatusBadRequest, "", desc)
}

func errNotActiveLine() *apiError {
	return newAPIError(http.StatusBadRequest, "NOT_ACTIVE_LINE", "The line with this ID is inactive or does not exist")
}

func errBatchLength() *apiError {
	return newAPIError(http.StatusBadRequest, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
}

func errBatchMethodNotAllowed() *apiError {
	return newAPIError(http.StatusMethodNotAllowed, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
}

// OAuth server errors (contract §1.5).

func errInvalidGrant() *apiError {
	return newAPIError(http.StatusBadRequest, "invalid_grant", "Invalid grant")
}

func errInvalidClient() *apiError {
	return newAPIError(http.StatusUnauthorized, "invalid_client", "Invalid client")
}

func errInvalidRequest(desc string) *apiError {
	return newAPIError(http.StatusBadRequest, "invalid_request", desc)
}
