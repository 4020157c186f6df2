package amocrm

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
)

// TestRefusalText: a refused manager's message is worded in the
// account's language — the pages' words for known codes, this package's
// for its own, the refusal's message after a Russian sentence otherwise.
func TestRefusalText(t *testing.T) {
	cases := []struct {
		lang, code, want string
	}{
		{"ru", "window_closed", crm.WindowClosed("ru", "instagram")},
		{"en", "window_closed", crm.WindowClosed("en", "instagram")},
		{"ru", "media_too_large", "Мессенджер не примет файл такого размера."},
		{"ru", "media_unavailable", amojoTexts["ru"]["file_unavailable"]},
		{"en", "message_unsupported", amojoTexts["en"]["unsupported"]},
		{"ru", "something_new", "Сообщение не отправлено: raw words"},
		{"en", "something_new", "raw words"},
	}
	for _, c := range cases {
		got := refusalText(c.lang, "instagram", fault.New(fault.Invalid, c.code, "raw words"))
		if got != c.want || strings.TrimSpace(got) == "" {
			t.Errorf("%s/%s: %q, want %q", c.lang, c.code, got, c.want)
		}
	}
	for _, l := range []string{"ru", "en"} {
		for k := range amojoTexts["ru"] {
			if amojoTexts[l][k] == "" {
				t.Errorf("amojo text %q missing in %s", k, l)
			}
		}
	}
}
