package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// A workspace says how its people write numbers: with the trunk-8 rule on
// (the default) 8 (916) … is +7 916 …; off, 8 starts a country code, as in
// much of Asia, and the same text is another number or none.
func TestWorkspacePhoneSettings(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		ch := e.CreateWhatsApp()
		e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Здравствуйте")
		e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })

		st, w := e.Do("GET", "/api/v1/workspaces/"+ws, nil)
		if st != 200 || w["phone_trunk8"] != true || w["phone_region"] != "RU" {
			t.Fatalf("defaults: %d %v", st, w)
		}
		send := func(to string) (int, map[string]any) {
			return e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": to, "text": "Добрый день"})
		}
		if st, body := send("тел. 8 (916) 123-45-67"); st != http.StatusAccepted {
			t.Fatalf("8 (916) … with the trunk rule on: %d %v", st, body)
		}

		st, w = e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"phone_trunk8": false, "phone_region": "cn", "timezone": "Asia/Almaty"})
		if st != 200 || w["phone_trunk8"] != false || w["phone_region"] != "CN" || w["timezone"] != "Asia/Almaty" {
			t.Fatalf("patch: %d %v", st, w)
		}
		if st, body := send("8 (916) 123-45-67"); st != http.StatusUnprocessableEntity || code(body) != "invalid_phone" {
			t.Fatalf("8 (916) … with the trunk rule off: %d %v", st, body)
		}
		// A Chinese mobile written without '+' is a number, not +7 …; it
		// has not written to us, so the window is what refuses it.
		if st, body := send("8613800138000"); st != http.StatusUnprocessableEntity || code(body) != "window_closed" {
			t.Fatalf("8613800138000 with the trunk rule off: %d %v", st, body)
		}

		// Bad settings are named and change nothing.
		for _, bad := range []struct {
			body map[string]any
			code string
		}{
			{map[string]any{"timezone": "Mars/Olympus"}, "timezone_invalid"},
			{map[string]any{"timezone": "Local"}, "timezone_invalid"},
			{map[string]any{"phone_region": "XX"}, "phone_region_invalid"},
			{map[string]any{"name": ""}, "name_invalid"},
			{map[string]any{"name": "Продажи\u202eабв"}, "name_invalid"},
			{map[string]any{"phone_trunk8": "yes"}, "invalid_json"},
			{map[string]any{"dialogs": 1}, "invalid_json"},
		} {
			if st, body := e.Do("PATCH", "/api/v1/workspaces/"+ws, bad.body); code(body) != bad.code || st < 400 {
				t.Errorf("%v: %d %v, want %s", bad.body, st, body, bad.code)
			}
		}
		if _, w = e.Do("GET", "/api/v1/workspaces/"+ws, nil); w["phone_region"] != "CN" || w["timezone"] != "Asia/Almaty" || w["name"] != "Default" {
			t.Fatalf("a refused patch changed the workspace: %v", w)
		}

		// Another workspace's token cannot see or change this one.
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Филиал"})
		_, tok := e.Do("POST", "/api/v1/workspaces/"+other["id"].(string)+"/tokens", nil)
		if st, _ := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"phone_trunk8": true}, tok["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("a foreign token patched the workspace: %d", st)
		}
		if st, _ := e.Do("PATCH", "/api/v1/workspaces/"+other["id"].(string), map[string]any{"phone_region": "KZ"}, tok["token"].(string)); st != http.StatusOK {
			t.Fatalf("a workspace token could not change its own workspace: %d", st)
		}
		if _, w = e.Do("GET", "/api/v1/workspaces/"+ws, nil); w["phone_trunk8"] != false {
			t.Fatalf("the foreign patch went through: %v", w)
		}
	})
}

func code(body map[string]any) string {
	if e, ok := body["error"].(map[string]any); ok {
		c, _ := e["code"].(string)
		return c
	}
	return ""
}
