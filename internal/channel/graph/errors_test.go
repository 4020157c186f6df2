package graph

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
)

func TestParseErrorFixtures(t *testing.T) {
	tests := []struct {
		file    string
		status  int
		outcome channel.Outcome
		code    int
		subcode int
		details string
	}{
		{"wa-error-131047.json", 400, channel.OutcomeFailed, 131047, 0, "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
		{"wa-error-130429.json", 400, channel.OutcomeRetry, 130429, 0, "Cloud API message throughput has been reached."},
		{"wa-error-131056.json", 400, channel.OutcomeRetry, 131056, 0, "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time."},
		{"wa-error-190-token-expired.json", 401, channel.OutcomeChannelError, 190, 463, ""},
		{"wa-error-100-invalid-param.json", 400, channel.OutcomeFailed, 100, 0, "Parameter 'to' is not a valid WhatsApp phone number"},
		{"wa-error-80007-rate-limit.json", 400, channel.OutcomeRetry, 80007, 0, ""},
		{"ig-error-outside-window.json", 400, channel.OutcomeFailed, 10, 2534022, ""},
		{"ig-error-551-unavailable.json", 400, channel.OutcomeFailed, 551, 1545041, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			se := ParseError(tt.status, body, "")
			if se.Outcome != tt.outcome || se.Err.Code != tt.code || se.Err.Subcode != tt.subcode || se.Err.Details != tt.details || se.HTTPStatus != tt.status {
				t.Errorf("got outcome %d code %d/%d details %q status %d, want %d %d/%d %q %d",
					se.Outcome, se.Err.Code, se.Err.Subcode, se.Err.Details, se.HTTPStatus,
					tt.outcome, tt.code, tt.subcode, tt.details, tt.status)
			}
			if se.Err.Message == "" {
				t.Error("message is empty")
			}
		})
	}
}

func TestParseErrorClassification(t *testing.T) {
	body := func(code int) []byte {
		return []byte(`{"error":{"message":"m","type":"OAuthException","code":` + strconv.Itoa(code) + `}}`)
	}
	retry := []int{130429, 131056, 4, 80007, 613, 131048, 131000, 131016, 131057, 2}
	failed := []int{131047, 131026, 10, 551, 100, 131008, 131009, 132000, 132001, 132012, 132015, 131049, 131050, 368, 200}
	for _, c := range retry {
		if got := ParseError(400, body(c), "").Outcome; got != channel.OutcomeRetry {
			t.Errorf("code %d: outcome %d, want retry", c, got)
		}
	}
	for _, c := range failed {
		if got := ParseError(400, body(c), "").Outcome; got != channel.OutcomeFailed {
			t.Errorf("code %d: outcome %d, want failed", c, got)
		}
	}
	for _, c := range []int{190, 0} {
		if got := ParseError(400, body(c), "").Outcome; got != channel.OutcomeChannelError {
			t.Errorf("code %d: outcome %d, want channel error", c, got)
		}
	}

	tests := []struct {
		name    string
		status  int
		body    string
		outcome channel.Outcome
		code    int
		msg     string
	}{
		{"401 plain text", 401, "Unauthorized", channel.OutcomeChannelError, 0, "Unauthorized"},
		{"401 with a 4xx code", 401, `{"error":{"message":"x","code":100}}`, channel.OutcomeChannelError, 100, "x"},
		{"500 html", 500, "<html>oops</html>", channel.OutcomeRetry, 0, "<html>oops</html>"},
		{"502 empty", 502, "", channel.OutcomeRetry, 0, "Bad Gateway"},
		{"503 json", 503, `{"error":{"message":"down","code":1}}`, channel.OutcomeRetry, 1, "down"},
		{"500 with a 4xx code", 500, `{"error":{"message":"x","code":100}}`, channel.OutcomeRetry, 100, "x"},
		{"429 without code", 429, `{}`, channel.OutcomeRetry, 0, "{}"},
		{"400 plain text", 400, "Bad request from proxy", channel.OutcomeFailed, 0, "Bad request from proxy"},
		{"400 error without code", 400, `{"error":{"message":"weird"}}`, channel.OutcomeFailed, 0, "weird"},
		{"404 json without error", 404, `{"foo":1}`, channel.OutcomeFailed, 0, `{"foo":1}`},
		{"string code", 400, `{"error":{"message":"s","code":"131056"}}`, channel.OutcomeRetry, 131056, "s"},
		{"error_data as string", 400, `{"error":{"message":"s","code":100,"error_data":"{\"details\":\"d\"}"}}`, channel.OutcomeFailed, 100, "s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := ParseError(tt.status, []byte(tt.body), "")
			if se.Outcome != tt.outcome || se.Err.Code != tt.code || se.Err.Message != tt.msg {
				t.Errorf("got %d code %d msg %q, want %d code %d msg %q", se.Outcome, se.Err.Code, se.Err.Message, tt.outcome, tt.code, tt.msg)
			}
			if se.Error() == "" {
				t.Error("empty Error()")
			}
		})
	}
}

func TestParseErrorDetailsFromString(t *testing.T) {
	se := ParseError(400, []byte(`{"error":{"code":100,"error_data":"{\"details\":\"d\"}"}}`), "")
	if se.Err.Details != "d" {
		t.Errorf("details %q", se.Err.Details)
	}
	se = ParseError(400, []byte(`{"error":{"code":100,"error_data":"just text"}}`), "")
	if se.Err.Details != "just text" {
		t.Errorf("details %q", se.Err.Details)
	}
}

func TestParseErrorTruncatesBody(t *testing.T) {
	long := strings.Repeat("я", 1000) // 2 bytes per rune
	se := ParseError(400, []byte(long), "")
	if n := len(se.Err.Message); n > maxErrorText+len("…") {
		t.Errorf("message is %d bytes", n)
	}
	if !strings.HasSuffix(se.Err.Message, "…") || strings.ContainsRune(se.Err.Message, '\uFFFD') {
		t.Errorf("bad truncation: %q", se.Err.Message[len(se.Err.Message)-10:])
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"30", 30 * time.Second},
		{" 5 ", 5 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"999999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if se := ParseError(429, []byte(`{"error":{"code":4}}`), "12"); se.RetryAfter != 12*time.Second {
		t.Errorf("RetryAfter = %v", se.RetryAfter)
	}
}

// Meta's message already carries "(#100)"; the failure reason built from
// it must not repeat it.
func TestParseErrorReasonNamesCodeOnce(t *testing.T) {
	body, err := os.ReadFile("testdata/wa-error-100-invalid-param.json")
	if err != nil {
		t.Fatal(err)
	}
	got := ParseError(400, body, "").Err.String()
	if strings.Count(got, "(#100)") != 1 || !strings.HasPrefix(got, "(#100) ") {
		t.Errorf("reason %q", got)
	}
}
