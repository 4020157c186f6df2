package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// PATCH /api/v1/workspaces/{id}/users/{user_id} edits a person as the
// cabinet's employee forms do: name, role and password, checked with
// named refusals; the last owner stays; a new password ends the person's
// sessions; a workspace token reaches its own workspace's people only.
func TestUsersAPIPatch(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Другая"})
		otherWS := other["id"].(string)
		owner := addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		mgr := addUser(t, e, ws, "manager@example.com", "manager", "manager password")
		stranger := addUser(t, e, otherWS, "boss@other.example", "owner", "other password")
		_, tok := e.Do("POST", "/api/v1/workspaces/"+ws+"/tokens", map[string]any{"name": "ci"})
		wsToken := tok["token"].(string)
		_, tok = e.Do("POST", "/api/v1/workspaces/"+otherWS+"/tokens", map[string]any{"name": "ci"})
		otherToken := tok["token"].(string)
		path := func(w, u string) string { return "/api/v1/workspaces/" + w + "/users/" + u }

		// Name and role, with the admin token and with the workspace's.
		st, body := e.Do("PATCH", path(ws, mgr), map[string]any{"name": "  Иван Петров ", "role": "admin"})
		if st != http.StatusOK || body["name"] != "Иван Петров" || body["role"] != "admin" || body["email"] != "manager@example.com" || body["sessions_ended"] != 0.0 {
			t.Fatalf("admin token edits: %d %v", st, body)
		}
		if r, n := roleOf(t, e, mgr); r != "admin" || n != "Иван Петров" {
			t.Fatalf("stored: %s %q", r, n)
		}
		if st, body := e.Do("PATCH", path(ws, mgr), map[string]any{"role": "manager"}, wsToken); st != http.StatusOK || body["role"] != "manager" || body["name"] != "Иван Петров" {
			t.Fatalf("workspace token edits the role alone: %d %v", st, body)
		}

		// Refusals name the problem and change nothing.
		for _, c := range []struct {
			body   map[string]any
			status int
			code   string
		}{
			{map[string]any{"role": "boss", "name": "X"}, 422, "role_invalid"},
			{map[string]any{"role": "", "name": "X"}, 422, "role_invalid"},
			{map[string]any{"name": "a\nb", "role": "owner"}, 422, "person_name_invalid"},
			{map[string]any{"password": "123456789", "name": "X"}, 422, "password_too_short"},
			{map[string]any{"password": "", "role": "owner"}, 422, "password_too_short"},
			{map[string]any{"password": strings.Repeat("я", 200)}, 422, "password_too_long"},
			{map[string]any{"email": "x@example.com"}, 400, "invalid_json"},
			{map[string]any{"role": 1}, 400, "invalid_json"},
		} {
			st, body := e.Do("PATCH", path(ws, mgr), c.body)
			if st != c.status || body["error"].(map[string]any)["code"] != c.code {
				t.Errorf("%v: %d %v, want %d %s", c.body, st, body, c.status, c.code)
			}
		}
		if r, n := roleOf(t, e, mgr); r != "manager" || n != "Иван Петров" {
			t.Fatalf("refused edits changed the person: %s %q", r, n)
		}
		if st := newVisitor(t, e).login("manager@example.com", "manager password"); st != 303 {
			t.Fatalf("refused edits changed the password: %d", st)
		}

		// The last owner stays an owner; with a second owner they may step down.
		st, body = e.Do("PATCH", path(ws, owner), map[string]any{"role": "admin"})
		if st != http.StatusConflict || body["error"].(map[string]any)["code"] != "last_owner" || body["error"].(map[string]any)["field"] != "role" {
			t.Fatalf("the last owner demoted: %d %v", st, body)
		}
		if r, _ := roleOf(t, e, owner); r != "owner" {
			t.Fatal("the last owner is no owner")
		}
		if st, _ := e.Do("PATCH", path(ws, mgr), map[string]any{"role": "owner"}); st != 200 {
			t.Fatalf("make a second owner: %d", st)
		}
		if st, body := e.Do("PATCH", path(ws, owner), map[string]any{"role": "admin"}); st != 200 || body["role"] != "admin" {
			t.Fatalf("an owner of two steps down: %d %v", st, body)
		}

		// A new password ends the person's sessions (this one and the
		// sign-in above); the old password stops working.
		v, _ := chatSignIn(t, e, "manager@example.com", "manager password")
		st, body = e.Do("PATCH", path(ws, mgr), map[string]any{"password": "a new password 1"}, wsToken)
		if st != http.StatusOK || body["sessions_ended"] != 2.0 {
			t.Fatalf("new password: %d %v", st, body)
		}
		if st, _ := v.get("/"); st != 303 {
			t.Fatalf("the person's session lives on after a new password: %d", st)
		}
		if st := newVisitor(t, e).login("manager@example.com", "manager password"); st != 401 {
			t.Fatalf("the old password still works: %d", st)
		}
		if st := newVisitor(t, e).login("manager@example.com", "a new password 1"); st != 303 {
			t.Fatalf("the new password does not work: %d", st)
		}

		// The tenant boundary: another workspace's token, or another
		// workspace's person under this workspace's path, is not found.
		for _, c := range []struct{ path, token string }{
			{path(ws, mgr), otherToken},
			{path(otherWS, stranger), wsToken},
			{path(ws, stranger), wsToken},
			{path(ws, stranger), apptest.AdminToken},
			{path(ws, "not-an-id"), apptest.AdminToken},
		} {
			if st, body := e.Do("PATCH", c.path, map[string]any{"name": "Взломщик", "role": "manager", "password": "intruder password"}, c.token); st != http.StatusNotFound {
				t.Errorf("PATCH %s (token %q…): %d %v", c.path, c.token[:min(4, len(c.token))], st, body)
			}
		}
		if r, n := roleOf(t, e, stranger); r != "owner" || n == "Взломщик" {
			t.Fatalf("another workspace's owner changed: %s %q", r, n)
		}
		if r, n := roleOf(t, e, mgr); r != "owner" || n != "Иван Петров" {
			t.Fatalf("another workspace's token changed this one's person: %s %q", r, n)
		}
		if st := newVisitor(t, e).login("boss@other.example", "other password"); st != 303 {
			t.Fatalf("another workspace's owner's password changed: %d", st)
		}
		e.NoPasswordsInLogs(ownerPW, "manager password", "a new password 1", "other password", "intruder password")
	})
}
