package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
)

// On a single-tenant gateway the installed portal lands in the default
// workspace, so the channels made before the install can be bound to it
// (issue 6, item 4).
func TestBitrix24SingleTenantInstallUsesDefaultWorkspace(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp() // in the default workspace, before the install
		integ, ws := e.InstallBitrix24()
		if ws != e.App.DefaultWorkspace.ID {
			t.Fatalf("portal in workspace %s, want the default %s", ws, e.App.DefaultWorkspace.ID)
		}
		bindLine(t, e, integ, ch, "1")
	})
}

// With other workspaces (a multi-tenant gateway) a portal gets its own,
// unless SWITCHBOARD_BITRIX24_WORKSPACE=default; binding a channel of
// another workspace tells the operator how to move it, and tells a
// workspace token nothing about other workspaces.
func TestBitrix24InstallWorkspaceSetting(t *testing.T) {
	cases := map[string]bool{"auto": false, "new": false, "default": true}
	for setting, inDefault := range cases {
		t.Run(setting, func(t *testing.T) {
			opts := b24Opts
			opts.Config = func(c *config.Config) { c.Bitrix24Workspace = setting }
			e := apptest.Start(t, opts)
			if st, _ := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Другой клиент", "timezone": "Asia/Almaty"}); st != http.StatusCreated {
				t.Fatalf("workspace: %d", st)
			}
			ch := e.CreateWhatsApp()
			integ, ws := e.InstallBitrix24()
			if (ws == e.App.DefaultWorkspace.ID) != inDefault {
				t.Fatalf("%s: portal in %s (default %s)", setting, ws, e.App.DefaultWorkspace.ID)
			}
			if inDefault {
				bindLine(t, e, integ, ch, "1")
				return
			}
			st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "openlines", "line_id": "1"})
			msg, _ := body["error"].(map[string]any)["message"].(string)
			if st != http.StatusNotFound || body["error"].(map[string]any)["code"] != "channel_in_other_workspace" ||
				!strings.Contains(msg, "/api/v1/channels/"+ch+"/move") || !strings.Contains(msg, ws) {
				t.Fatalf("operator's bind: %d %v", st, body)
			}
			_, tok := e.Do("POST", "/api/v1/workspaces/"+ws+"/tokens", nil)
			st, body = e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "openlines", "line_id": "1"}, tok["token"].(string))
			if st != http.StatusNotFound || body["error"].(map[string]any)["code"] != "channel_not_found" ||
				strings.Contains(body["error"].(map[string]any)["message"].(string), e.App.DefaultWorkspace.ID) {
				t.Fatalf("workspace token's bind: %d %v", st, body)
			}
		})
	}
}
