package chatview

import (
	"net/url"
	"strings"
	"testing"
)

// Both languages word the same things: a key missing in one would show as
// nothing on its page.
func TestTextsInBothLanguages(t *testing.T) {
	for key := range texts["ru"] {
		if texts["en"][key] == "" {
			t.Errorf("%q has no English", key)
		}
	}
	for key := range texts["en"] {
		if texts["ru"][key] == "" {
			t.Errorf("%q has no Russian", key)
		}
	}
}

// A notice is worded by the page from a code: a crafted link cannot put
// its own text on it.
func TestNoticeFromCodes(t *testing.T) {
	for _, c := range []struct {
		q     url.Values
		lang  string
		want  string
		isErr bool
	}{
		{url.Values{"sent": {"1"}}, "ru", "поставлено в очередь", false},
		{url.Values{"sent": {"1"}}, "en", "queued for sending", false},
		{url.Values{"error": {"Call +1 555 0100 now"}}, "ru", "Внутренняя ошибка", true},
		{url.Values{"error": {"recipient_foreign"}}, "en", "does not belong to the CRM record", true},
		{url.Values{"error": {"window_closed"}, "messenger": {"instagram"}}, "ru", "7 дней", true},
		{url.Values{"error": {"window_closed"}, "messenger": {"<b>x</b>"}}, "en", "window is closed", true},
		{url.Values{}, "ru", "", false},
	} {
		got, isErr := Notice(c.lang, c.q)
		if !strings.Contains(got, c.want) || isErr != c.isErr || (c.want == "" && got != "") {
			t.Errorf("%v in %s: %q %v", c.q, c.lang, got, isErr)
		}
		if strings.Contains(got, "555") || strings.Contains(got, "<b>") {
			t.Errorf("%v put its own text on the page: %q", c.q, got)
		}
	}
}

func TestTemplateBody(t *testing.T) {
	body := templateBody([]byte(`[{"type":"HEADER","format":"TEXT","text":"Hi"},{"type":"BODY","text":"Order {{1}} is on its way"}]`))
	if body != "Order {{1}} is on its way" {
		t.Fatalf("body %q", body)
	}
	if templateBody([]byte(`not json`)) != "" {
		t.Fatal("unreadable components gave a body")
	}
}
