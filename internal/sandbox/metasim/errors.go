package metasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// graphError is Meta's error object. Field order follows the fixtures so that
// bodies look like the real thing when a person reads them.
type graphError struct {
	status int

	Message   string     `json:"message"`
	Type      string     `json:"type"`
	Code      int        `json:"code"`
	Subcode   int        `json:"error_subcode,omitempty"`
	ErrorData *errorData `json:"error_data,omitempty"`
	FBTraceID string     `json:"fbtrace_id"`
}

type errorData struct {
	MessagingProduct string `json:"messaging_product"`
	Details          string `json:"details"`
}

func (e *graphError) Error() string { return fmt.Sprintf("graph error %d: %s", e.Code, e.Message) }

func writeGraphError(w http.ResponseWriter, e *graphError) {
	e.FBTraceID = newFBTraceID()
	// Graph sends this header with every error; some clients read it.
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("OAuth \"Facebook Platform\" %q %q", errorKind(e), e.Message))
	writeJSON(w, e.status, struct {
		Error *graphError `json:"error"`
	}{e})
}

func errorKind(e *graphError) string {
	if e.status == http.StatusUnauthorized {
		return "invalid_token"
	}
	return "invalid_request"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	w.Write(b)
}

// WhatsApp errors carry error_data with messaging_product; Instagram ones do not.

func waError(code int, message, details string) *graphError {
	return &graphError{
		status:    http.StatusBadRequest,
		Message:   message,
		Type:      "OAuthException",
		Code:      code,
		ErrorData: &errorData{MessagingProduct: "whatsapp", Details: details},
	}
}

func errWAInvalidParam(details string) *graphError {
	return waError(100, "(#100) Invalid parameter", details)
}

func errThroughput() *graphError {
	return waError(130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached.")
}

func errPairRateLimit() *graphError {
	return waError(131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
		"Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.")
}

const details131047 = "Message failed to send because more than 24 hours have passed since the customer last replied to this number."

func errReengagement() *graphError {
	return waError(131047, "(#131047) Re-engagement message", details131047)
}

func errNoToken() *graphError {
	return &graphError{status: http.StatusUnauthorized, Message: "An access token is required to request this resource.", Type: "OAuthException", Code: 104}
}

func errInvalidToken() *graphError {
	return &graphError{status: http.StatusUnauthorized, Message: "Invalid OAuth access token - Cannot parse access token", Type: "OAuthException", Code: 190}
}

// pacific renders times the way Graph's token errors do. A fixed zone avoids
// depending on tzdata being installed.
var pacific = time.FixedZone("PST", -8*60*60)

func errTokenExpired(expiredAt, now time.Time) *graphError {
	const layout = "Monday, 02-Jan-06 15:04:05 MST"
	return &graphError{
		status: http.StatusUnauthorized,
		Message: fmt.Sprintf("Error validating access token: Session has expired on %s. The current time is %s.",
			expiredAt.In(pacific).Format(layout), now.In(pacific).Format(layout)),
		Type:    "OAuthException",
		Code:    190,
		Subcode: 463,
	}
}

// errUnsupported is what Graph answers for an unknown object id, an object the
// token may not see, or a method the object does not support: it does not
// tell these apart, and neither do we.
func errUnsupported(method, id string) *graphError {
	verb := "get"
	switch method {
	case http.MethodPost:
		verb = "post"
	case http.MethodDelete:
		verb = "delete"
	}
	return &graphError{
		status: http.StatusBadRequest,
		Message: fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
			verb, id),
		Type:    "GraphMethodException",
		Code:    100,
		Subcode: 33,
	}
}

func errUnknownPath(path string) *graphError {
	return &graphError{status: http.StatusBadRequest, Message: "Unknown path components: " + path, Type: "OAuthException", Code: 2500}
}

func errIGInvalidParam(message string) *graphError {
	return &graphError{status: http.StatusBadRequest, Message: "(#100) " + message, Type: "OAuthException", Code: 100}
}

func errIGNoUser() *graphError {
	return &graphError{status: http.StatusBadRequest, Message: "(#100) No matching user found", Type: "OAuthException", Code: 100, Subcode: 2018001}
}

func errIGOutsideWindow() *graphError {
	return &graphError{status: http.StatusBadRequest, Message: "This message is sent outside of allowed window.", Type: "IGApiException", Code: 10, Subcode: 2534022}
}

func errIGConsent() *graphError {
	return &graphError{status: http.StatusBadRequest, Message: "(#230) User consent is required to access user profile", Type: "OAuthException", Code: 230}
}
