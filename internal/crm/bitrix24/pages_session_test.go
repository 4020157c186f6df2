package bitrix24

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
)

// A session past its absolute lifetime is refused in its own language,
// on the page and on a save (the lifetime itself is crm's test).
func TestSessionAbsoluteLifetime(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := &Service{cfg: Config{SessionKey: key}, sessions: crm.NewSessions(key)}
	now := time.Now()

	// The refusal asks to reopen the app from Bitrix24, in the session's
	// language, on the page and on a save.
	for _, c := range []struct{ lang, want, not string }{
		{"ru", "Откройте приложение заново из Битрикс24", "Bitrix24."},
		{"en", "Reopen the app from Bitrix24", "Битрикс24"},
	} {
		// Signed now, but the portal vouched for the user nine hours ago.
		sess := s.sessions.Sign(crm.Session{IntegrationID: "i", Lang: c.lang, Admin: true, Auth: now.Add(-9 * time.Hour).Unix()})
		w := httptest.NewRecorder()
		s.ServeApp(w, httptest.NewRequest(http.MethodGet, "/bitrix24/app?sess="+url.QueryEscape(sess), nil))
		body, err := io.ReadAll(w.Result().Body)
		if err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusUnauthorized || !strings.Contains(string(body), c.want) || strings.Contains(string(body), c.not) {
			t.Errorf("%s page with an aged session: %d %s", c.lang, w.Code, body)
		}
		w = httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/bitrix24/app/bind", strings.NewReader(url.Values{"sess": {sess}, "channel_id": {"c"}, "mode": {"none"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		s.ServeAppBind(w, r)
		body, err = io.ReadAll(w.Result().Body)
		if err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusUnauthorized || !strings.Contains(string(body), c.want) {
			t.Errorf("%s save with an aged session: %d %s", c.lang, w.Code, body)
		}
	}
}

// Every text of the pages exists in both languages, so that no page
// falls back to the other language's words.
func TestPageTextsInBothLanguages(t *testing.T) {
	for key := range pageTexts["ru"] {
		if pageTexts["en"][key] == "" {
			t.Errorf("%s has no English text", key)
		}
	}
	for key := range pageTexts["en"] {
		if pageTexts["ru"][key] == "" {
			t.Errorf("%s has no Russian text", key)
		}
	}
	if errText("ru", "no_such_code") != pageTexts["ru"]["err_internal"] {
		t.Error("an unknown code is not worded as an internal error")
	}
}
