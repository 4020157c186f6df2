package httperr

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/fault"
)

func TestStatus(t *testing.T) {
	for kind, want := range map[fault.Kind]int{
		fault.Malformed: 400, fault.Invalid: 422, fault.Unauthorized: 401, fault.Forbidden: 403,
		fault.NotFound: 404, fault.Conflict: 409, fault.TooLarge: 413, fault.Upstream: 502,
		fault.Unavailable: 503, fault.Internal: 500, fault.Kind("new"): 500,
	} {
		if got := Status(kind); got != want {
			t.Errorf("Status(%s) = %d, want %d", kind, got, want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	wrapped := fmt.Errorf("binding: %w", fault.New(fault.Invalid, "window_closed", "the <24h> window & more"))
	w := httptest.NewRecorder()
	WriteJSON(w, wrapped)
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), `"code":"window_closed"`) {
		t.Errorf("wrapped fault: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	WriteJSON(w, errors.New("dial tcp 10.0.0.1:5432: refused"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "10.0.0.1") || !strings.Contains(w.Body.String(), `"code":"internal"`) {
		t.Errorf("plain error leaks or is not internal: %d %s", w.Code, w.Body)
	}
}

func TestWriteJSONNamesTheField(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, &fault.Error{Kind: fault.Invalid, Code: "owner_weight_out_of_range", Field: "owner.users[2].weight",
		Message: "owner.users[2].weight: weight 0 is outside 1..100"})
	want := `{"error":{"code":"owner_weight_out_of_range","field":"owner.users[2].weight","message":"owner.users[2].weight: weight 0 is outside 1..100"}}`
	if w.Code != http.StatusUnprocessableEntity || strings.TrimSpace(w.Body.String()) != want {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	w = httptest.NewRecorder()
	WriteJSON(w, fault.New(fault.Invalid, "x", "nothing to blame"))
	if strings.Contains(w.Body.String(), `"field"`) {
		t.Fatalf("an empty field was written: %s", w.Body.String())
	}
}
