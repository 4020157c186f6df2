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
		if st, body := send("8 (916) 123-45-67"); st != http.StatusUnprocessableEntity || errCode(body) != "invalid_phone" {
			t.Fatalf("8 (916) … with the trunk rule off: %d %v", st, body)
		}
		// A Chinese mobile written without '+' is a number, not +7 …; it
		// has not written to us, so the window is what refuses it.
		if st, body := send("8613800138000"); st != http.StatusUnprocessableEntity || errCode(body) != "window_closed" {
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
			if st, body := e.Do("PATCH", "/api/v1/workspaces/"+ws, bad.body); errCode(body) != bad.code || st < 400 {
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

// A leaked workspace token can be found and cut off: the list never shows
// a token, a revoked one stops working at once, and another workspace can
// neither list nor revoke this one's.
func TestWorkspaceTokensListAndRevoke(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		_, a := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Алматы"})
		_, b := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Москва"})
		wsA, wsB := a["id"].(string), b["id"].(string)
		_, t1 := e.Do("POST", "/api/v1/workspaces/"+wsA+"/tokens", map[string]any{"name": "crm"})
		_, t2 := e.Do("POST", "/api/v1/workspaces/"+wsA+"/tokens", map[string]any{"name": "leaked"})
		_, tb := e.Do("POST", "/api/v1/workspaces/"+wsB+"/tokens", nil)
		tokA, leaked, tokB := t1["token"].(string), t2["token"].(string), tb["token"].(string)

		st, list := e.Do("GET", "/api/v1/workspaces/"+wsA+"/tokens", nil, tokA)
		if st != http.StatusOK || len(list["data"].([]any)) != 2 {
			t.Fatalf("list: %d %v", st, list)
		}
		for _, v := range list["data"].([]any) {
			if _, ok := v.(map[string]any)["token"]; ok {
				t.Fatalf("the list shows a token: %v", v)
			}
		}
		if st, _ := e.Do("GET", "/api/v1/workspaces/"+wsA+"/tokens", nil, tokB); st != http.StatusNotFound {
			t.Fatalf("B listed A's tokens: %d", st)
		}
		if st, _ := e.Do("DELETE", "/api/v1/workspaces/"+wsA+"/tokens/"+t2["id"].(string), nil, tokB); st != http.StatusNotFound {
			t.Fatalf("B revoked A's token: %d", st)
		}
		if st, _ := e.Do("GET", "/api/v1/channels", nil, leaked); st != http.StatusOK {
			t.Fatalf("the token B tried to revoke stopped working: %d", st)
		}
		st, rv := e.Do("DELETE", "/api/v1/workspaces/"+wsA+"/tokens/"+t2["id"].(string), nil, tokA)
		if st != http.StatusOK || rv["revoked_at"] == nil {
			t.Fatalf("revoke: %d %v", st, rv)
		}
		if st, _ := e.Do("GET", "/api/v1/channels", nil, leaked); st != http.StatusUnauthorized {
			t.Fatalf("a revoked token still works: %d", st)
		}
		if st, _ := e.Do("GET", "/api/v1/channels", nil, tokA); st != http.StatusOK {
			t.Fatalf("revoking one token stopped another: %d", st)
		}
		if st, _ := e.Do("DELETE", "/api/v1/workspaces/"+wsA+"/tokens/nope", nil, tokA); st != http.StatusNotFound {
			t.Fatalf("revoking a made-up token: %d", st)
		}
	})
}
