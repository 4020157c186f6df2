package apptest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/sandbox/metasim"
)

// Helpers shared by the end-to-end tests of internal/app and the browser
// tests of test/browser: one copy, here.

// CreateWhatsAppIn creates the fixtures' WhatsApp channel ("Продажи") in
// a workspace and returns its id.
func (e *Env) CreateWhatsAppIn(ws string) string {
	e.T.Helper()
	st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Продажи", "workspace_id": ws,
		"phone_number_id": PhoneNumberID, "waba_id": WabaID, "display_phone": "+7 701 234 56 78", "access_token": WAToken})
	if st != http.StatusCreated {
		e.T.Fatalf("channel: %d %v", st, body)
	}
	return body["id"].(string)
}

// AddUser creates a cabinet user of the workspace with the admin token
// and returns its id.
func AddUser(t testing.TB, e *Env, ws, email, role, pw string) string {
	t.Helper()
	st, body := e.Do("POST", "/api/v1/workspaces/"+ws+"/users", map[string]any{"email": email, "role": role, "password": pw})
	if st != http.StatusCreated {
		t.Fatalf("add user %s: %d %v", email, st, body)
	}
	return body["id"].(string)
}

// GraphSends lists the POSTs the simulator's Graph API received on path
// (the sends of one number or account; read marks share the path and are
// left out).
func GraphSends(sim *metasim.Server, path string) []metasim.Request {
	var out []metasim.Request
	for _, r := range sim.Requests() {
		if r.Method == http.MethodPost && r.Path == path && !r.IsReadMark() {
			out = append(out, r)
		}
	}
	return out
}

// Bindings lists an integration's channel bindings as the API shows them.
func (e *Env) Bindings(integ string) []any {
	e.T.Helper()
	_, v := e.Do("GET", "/api/v1/integrations/"+integ, nil)
	b, _ := v["bindings"].([]any)
	return b
}

// ChannelsByName lists a workspace's channels as the API shows them, by
// name.
func (e *Env) ChannelsByName(ws string) map[string]map[string]any {
	e.T.Helper()
	st, body := e.Do("GET", "/api/v1/channels?workspace_id="+ws, nil)
	if st != http.StatusOK {
		e.T.Fatalf("list channels: %d %v", st, body)
	}
	out := map[string]map[string]any{}
	for _, v := range body["data"].([]any) {
		m := v.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// NoPasswordsInLogs fails when a password or a password hash reached the
// gateway's logs.
func (e *Env) NoPasswordsInLogs(passwords ...string) {
	e.T.Helper()
	logs := e.Logs()
	for _, p := range passwords {
		if strings.Contains(logs, p) {
			e.T.Errorf("a password (%.3s…) is in the logs", p)
		}
	}
	if strings.Contains(logs, "$argon2id$") {
		e.T.Error("a password hash is in the logs")
	}
}
