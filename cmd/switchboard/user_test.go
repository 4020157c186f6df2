package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/password"
	"github.com/switchboard/switchboard/internal/store"
)

// The operator makes the first owner from the command line: with a
// password from stdin, or with one generated and printed once.
func TestUserAdd(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SWITCHBOARD_DATA_DIR", dir)
	var out, errb bytes.Buffer
	err := runIn(strings.NewReader("long enough secret\n"), []string{"user", "add", "--email", "Owner@Example.com", "--role", "owner", "--password-stdin"}, &out, &errb)
	if err != nil || !strings.Contains(out.String(), "owner@example.com (owner)") || strings.Contains(out.String(), "long enough secret") {
		t.Fatalf("user add: %v %q", err, out.String())
	}
	// It names the database it wrote to, so that a user added to the
	// wrong one (no SWITCHBOARD_DATABASE_URL given) can see it.
	if want := "in SQLite " + filepath.Join(dir, "switchboard.db"); !strings.Contains(out.String(), want) {
		t.Fatalf("user add does not say %q: %q", want, out.String())
	}
	out.Reset()
	if err := runIn(strings.NewReader(""), []string{"user", "add", "--email", "m@example.com", "--role", "manager"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	gen := regexp.MustCompile(`(?m)^    (\S{16})$`).FindStringSubmatch(out.String())
	if gen == nil {
		t.Fatalf("no generated password printed: %q", out.String())
	}
	// Refusals name the problem and add nobody.
	for args, code := range map[string]string{
		"--email Owner@example.com --role owner":                                    "email_taken",
		"--email nope --role owner":                                                 "email_invalid",
		"--email x@example.com --role boss":                                         "role_invalid",
		"--email y@example.com --role admin --workspace 01HZZZZZZZZZZZZZZZZZZZZZZZ": "workspace_not_found",
	} {
		err := runIn(strings.NewReader(""), append([]string{"user", "add"}, strings.Fields(args)...), &out, &errb)
		if err == nil || !strings.Contains(err.Error(), code) {
			t.Errorf("%s: %v, want %s", args, err, code)
		}
	}
	if err := runIn(strings.NewReader("short\n"), []string{"user", "add", "--email", "z@example.com", "--role", "admin", "--password-stdin"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "password_too_short") {
		t.Errorf("short password: %v", err)
	}

	cfg, err := config.Load("", []string{"SWITCHBOARD_DATA_DIR=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	db, err := app.OpenDB(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := store.New(db, nil)
	ws, err := st.EnsureDefaultWorkspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	us, err := st.ListCabinetUsers(context.Background(), store.All, ws.ID)
	if err != nil || len(us) != 2 {
		t.Fatalf("users: %d %v", len(us), err)
	}
	for _, c := range []struct {
		u  store.CabinetUser
		pw string
	}{{us[0], "long enough secret"}, {us[1], gen[1]}} {
		if ok, err := password.Verify(c.pw, c.u.PasswordHash); !ok || err != nil {
			t.Errorf("%s: the password does not verify (%v)", c.u.Email, err)
		}
	}
}
