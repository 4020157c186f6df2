package app_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

var generatedRe = regexp.MustCompile(`id="generated">(\S{16})<`)

func roleOf(t *testing.T, e *apptest.Env, id string) (role, name string) {
	t.Helper()
	var u store.CabinetUser
	if err := e.App.DB.Gorm.Where("id = ?", id).First(&u).Error; err != nil {
		t.Fatal(err)
	}
	return u.Role, u.Name
}

// Owners and admins edit people and reset passwords; the last owner
// stays; a reset ends the person's sessions.
func TestCabinetEmployeesEdit(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Другая"})
		owner := addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		admin := addUser(t, e, ws, "admin@example.com", "admin", "admin password")
		mgr := addUser(t, e, ws, "manager@example.com", "manager", "manager password")
		stranger := addUser(t, e, other["id"].(string), "boss@other.example", "owner", "other password")
		own, ownTok := chatSignIn(t, e, "owner@example.com", ownerPW)
		adm, admTok := chatSignIn(t, e, "admin@example.com", "admin password")
		m, _ := chatSignIn(t, e, "manager@example.com", "manager password")

		// Name and role.
		if st, page := own.post("/employees/"+mgr, url.Values{"csrf": {ownTok}, "name": {"Иван Петров"}, "role": {"admin"}}); st != 200 || !strings.Contains(page, "Изменения сохранены") || strings.Contains(page, `id="problem"`) {
			t.Fatalf("owner edits a manager: %d", st)
		}
		if r, n := roleOf(t, e, mgr); r != "admin" || n != "Иван Петров" {
			t.Fatalf("after the edit: %s %q", r, n)
		}
		if st, page := own.post("/employees/"+mgr, url.Values{"csrf": {ownTok}, "name": {"x"}, "role": {"boss"}}); st != 422 || !strings.Contains(page, `data-field="role"`) {
			t.Fatalf("a bad role: %d", st)
		}
		// An admin touches no owner and makes none.
		if st, _ := adm.post("/employees/"+owner, url.Values{"csrf": {admTok}, "name": {"x"}, "role": {"manager"}}); st != 403 {
			t.Errorf("an admin demotes the owner: %d", st)
		}
		if st, _ := adm.post("/employees/"+mgr, url.Values{"csrf": {admTok}, "name": {"x"}, "role": {"owner"}}); st != 403 {
			t.Errorf("an admin makes an owner: %d", st)
		}
		if st, _ := adm.post("/employees/"+owner+"/password", url.Values{"csrf": {admTok}}); st != 403 {
			t.Errorf("an admin resets the owner's password: %d", st)
		}
		// Nobody of another workspace.
		for _, p := range []string{"/employees/" + stranger, "/employees/" + stranger + "/password"} {
			if st, _ := own.post(p, url.Values{"csrf": {ownTok}, "name": {"x"}, "role": {"manager"}}); st != 404 {
				t.Errorf("POST %s of another workspace: %d", p, st)
			}
		}
		if r, _ := roleOf(t, e, stranger); r != "owner" {
			t.Fatal("another workspace's owner changed")
		}
		// The last owner stays an owner.
		if st, page := own.post("/employees/"+owner, url.Values{"csrf": {ownTok}, "name": {""}, "role": {"admin"}}); st != 422 || !strings.Contains(page, `id="edit-problem" data-field="role"`) || strings.Count(page, "хотя бы один владелец") != 1 {
			t.Fatalf("the last owner demoted themselves: %d", st)
		}
		if r, _ := roleOf(t, e, owner); r != "owner" {
			t.Fatal("the last owner is no owner")
		}

		// A reset: made, shown once, the person's sessions end.
		if st, page := adm.post("/employees/"+mgr+"/password", url.Values{"csrf": {admTok}, "password": {"short"}}); st != 422 || !strings.Contains(page, "не короче 10") {
			t.Fatalf("a short password: %d", st)
		}
		st, page := adm.post("/employees/"+mgr+"/password", url.Values{"csrf": {admTok}})
		g := generatedRe.FindStringSubmatch(page)
		if st != 200 || g == nil {
			t.Fatalf("reset: %d\n%s", st, page)
		}
		if st, _ := m.get("/"); st != 303 {
			t.Fatalf("the reset person's session lives on: %d", st)
		}
		if st := newVisitor(t, e).login("manager@example.com", "manager password"); st != 401 {
			t.Fatalf("the old password still works: %d", st)
		}
		if st := newVisitor(t, e).login("manager@example.com", g[1]); st != 303 {
			t.Fatalf("the new password does not work: %d", st)
		}
		if _, page := adm.get("/employees"); strings.Contains(page, g[1]) {
			t.Fatal("the generated password is shown again")
		}
		// The admin's own session is untouched; a set password works.
		if st, _ := adm.post("/employees/"+mgr+"/password", url.Values{"csrf": {admTok}, "password": {"chosen password 1"}}); st != 200 {
			t.Fatalf("set a password: %d", st)
		}
		if st := newVisitor(t, e).login("manager@example.com", "chosen password 1"); st != 303 {
			t.Fatalf("the set password does not work: %d", st)
		}
		e.NoPasswordsInLogs(ownerPW, "admin password", "manager password", "chosen password 1", g[1])
		_ = admin
	})
}

// Everyone changes their own password with the current one; the other
// sessions end, this one stays.
func TestCabinetOwnPassword(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		addUser(t, e, ws, "manager@example.com", "manager", "manager password")
		v, tok := chatSignIn(t, e, "manager@example.com", "manager password")
		phone, _ := chatSignIn(t, e, "manager@example.com", "manager password")
		if st, page := v.get("/account"); st != 200 || !strings.Contains(page, `id="own-password"`) {
			t.Fatalf("account page: %d", st)
		}
		if st, page := v.post("/account/password", url.Values{"csrf": {tok}, "current": {"wrong password"}, "password": {"new password 12"}}); st != 422 || !strings.Contains(page, "Текущий пароль неверен") {
			t.Fatalf("a wrong current password: %d", st)
		}
		if n := countRows(t, e, "login_failures", "1 = 1"); n == 0 {
			t.Fatal("a wrong current password is not counted against the account")
		}
		if st, page := v.post("/account/password", url.Values{"csrf": {tok}, "current": {"manager password"}, "password": {"short"}}); st != 422 || !strings.Contains(page, `data-field="password"`) {
			t.Fatalf("a short new password: %d", st)
		}
		if st, _ := v.post("/account/password", url.Values{"current": {"manager password"}, "password": {"new password 12"}}); st != 403 {
			t.Fatalf("without the CSRF token: %d", st)
		}
		if st, _ := v.post("/account/password", url.Values{"csrf": {tok}, "current": {"manager password"}, "password": {"new password 12"}}); st != 303 {
			t.Fatalf("change: %d", st)
		}
		if st, page := v.get("/account?done=password"); st != 200 || !strings.Contains(page, "Пароль сменён") {
			t.Fatalf("this session ended: %d", st)
		}
		if st, _ := phone.get("/"); st != 303 {
			t.Fatalf("the other session lives on: %d", st)
		}
		if st := newVisitor(t, e).login("manager@example.com", "new password 12"); st != 303 {
			t.Fatalf("the new password: %d", st)
		}
		e.NoPasswordsInLogs("manager password", "new password 12")
	})
}
