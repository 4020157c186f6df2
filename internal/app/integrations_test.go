package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// The provider decodes a bind request's body itself, and must refuse it in
// the admin API's words; the integration is found (in the caller's scope)
// before the body is decoded.
func TestBindBodyRefusals(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		path := "/api/v1/integrations/" + integ + "/channels/" + ch
		for _, tc := range []struct{ body, want string }{
			{`{"mode":1}`, `field "mode" must be a string`},
			{`{"mode":"openlines","nope":true}`, `unknown field "nope"`},
			{`{"mode":"openlines"} {}`, "request body: unexpected data after the JSON object"},
			{``, "the body is empty: "},
		} {
			st, body := e.Do("PUT", path, tc.body)
			msg, _ := body["error"].(map[string]any)["message"].(string)
			if st != http.StatusBadRequest || errCode(body) != "invalid_json" || !strings.HasPrefix(msg, tc.want) {
				t.Errorf("bind with %q: %d %v, want 400 invalid_json %q", tc.body, st, body, tc.want)
			}
		}
		if st, body := e.Do("PUT", "/api/v1/integrations/"+strings.Repeat("0", len(integ))+"/channels/"+ch, `{"mode":1}`); st != http.StatusNotFound {
			t.Errorf("bind to no integration: %d %v, want 404", st, body)
		}
		if st, body := e.Do("PUT", path, strings.Repeat(" ", 1<<20+1)); st != http.StatusRequestEntityTooLarge || errCode(body) != "body_too_large" {
			t.Errorf("bind with a huge body: %d %v, want 413", st, body)
		}
	})
}
