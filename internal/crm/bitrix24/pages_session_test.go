package bitrix24

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// forgeSession signs a session as it stands, with no renewal rules, the
// way an older gateway or a renewal a moment ago would have.
func forgeSession(t *testing.T, key []byte, ss session) string {
	t.Helper()
	raw, err := json.Marshal(ss)
	if err != nil {
		t.Fatal(err)
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestSessionAbsoluteLifetime(t *testing.T) {
	s := &Service{cfg: Config{SessionKey: []byte("0123456789abcdef0123456789abcdef")}}
	now := time.Now()

	// Renewed a moment ago (expires in two hours), but the portal last
	// vouched for the user nine hours ago: refused.
	old := forgeSession(t, s.cfg.SessionKey, session{IntegrationID: "i", Lang: "ru", Auth: now.Add(-9 * time.Hour).Unix(), Expires: now.Add(2 * time.Hour).Unix()})
	if _, err := s.openSession(old); !errors.Is(err, errSessionExpired) {
		t.Fatalf("a session past its absolute lifetime opened: %v", err)
	}
	// A session without the portal's time (signed before it existed) is
	// not renewed either.
	legacy := forgeSession(t, s.cfg.SessionKey, session{IntegrationID: "i", Lang: "ru", Expires: now.Add(2 * time.Hour).Unix()})
	if _, err := s.openSession(legacy); !errors.Is(err, errSessionExpired) {
		t.Fatalf("a session with no authentication time opened: %v", err)
	}
	// Renewal never reaches past the absolute lifetime.
	auth := now.Add(-7*time.Hour - 30*time.Minute).Unix()
	ss, err := s.openSession(s.signSession(session{IntegrationID: "i", Auth: auth}))
	if err != nil {
		t.Fatal(err)
	}
	if want := auth + int64(sessionMaxAge/time.Second); ss.Expires != want {
		t.Fatalf("renewed until %d, want the absolute end %d", ss.Expires, want)
	}
	// A fresh one gets the usual two hours.
	ss, err = s.openSession(s.signSession(session{IntegrationID: "i", Auth: now.Unix()}))
	if err != nil || ss.Expires > now.Add(sessionTTL+time.Second).Unix() {
		t.Fatalf("fresh session: %+v %v", ss, err)
	}

	// The refusal asks to reopen the app from Bitrix24, in the session's
	// language, on the page and on a save.
	for _, c := range []struct{ lang, want, not string }{
		{"ru", "Откройте приложение заново из Битрикс24", "Bitrix24."},
		{"en", "Reopen the app from Bitrix24", "Битрикс24"},
	} {
		sess := forgeSession(t, s.cfg.SessionKey, session{IntegrationID: "i", Lang: c.lang, Admin: true, Auth: now.Add(-9 * time.Hour).Unix(), Expires: now.Add(time.Hour).Unix()})
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
