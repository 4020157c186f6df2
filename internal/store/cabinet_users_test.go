package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func TestCabinetUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		ws := defaultWS(t, st)
		other, err := st.CreateWorkspace(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		owner := &store.CabinetUser{WorkspaceID: ws, Email: "a@example.com", Role: store.RoleOwner, PasswordHash: "h"}
		if err := st.CreateCabinetUser(ctx, owner); err != nil {
			t.Fatal(err)
		}
		// The same e-mail: refused in the workspace, taken in another.
		if err := st.CreateCabinetUser(ctx, &store.CabinetUser{WorkspaceID: ws, Email: "a@example.com", Role: store.RoleAdmin, PasswordHash: "h"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate e-mail: %v", err)
		}
		there := &store.CabinetUser{WorkspaceID: other.ID, Email: "a@example.com", Role: store.RoleOwner, PasswordHash: "h2"}
		if err := st.CreateCabinetUser(ctx, there); err != nil {
			t.Fatal(err)
		}
		if us, _ := st.CabinetUsersByEmail(ctx, "a@example.com"); len(us) != 2 || us[0].ID != owner.ID {
			t.Fatalf("by email: %+v", us)
		}
		// A workspace's scope sees only its own people.
		if _, err := st.GetCabinetUser(ctx, store.Scope{WorkspaceID: other.ID}, ws, owner.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another workspace read a user: %v", err)
		}
		if _, err := st.GetCabinetUser(ctx, store.All, other.ID, owner.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a user read through the wrong workspace: %v", err)
		}
		// The last owner stays; with a second owner, the first may go.
		if _, err := st.DeleteCabinetUser(ctx, store.All, ws, owner.ID); !errors.Is(err, store.ErrLastOwner) {
			t.Fatalf("last owner deleted: %v", err)
		}
		second := &store.CabinetUser{WorkspaceID: ws, Email: "b@example.com", Role: store.RoleOwner, PasswordHash: "h"}
		if err := st.CreateCabinetUser(ctx, second); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateCabinetSession(ctx, "s1", owner.ID, store.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DeleteCabinetUser(ctx, store.All, ws, owner.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.CabinetSessionUser(ctx, "s1", store.Now().Add(-time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a deleted user's session lives on: %v", err)
		}
		if us, _ := st.ListCabinetUsers(ctx, store.All, ws); len(us) != 1 || us[0].ID != second.ID {
			t.Fatalf("after delete: %+v", us)
		}
	})
}

func TestCabinetSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		u := &store.CabinetUser{WorkspaceID: defaultWS(t, st), Email: "a@example.com", Role: store.RoleOwner, PasswordHash: "h"}
		if err := st.CreateCabinetUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		now := store.Now()
		for _, s := range []struct {
			id  string
			exp time.Time
		}{{"live", now.Add(time.Hour)}, {"other", now.Add(time.Hour)}, {"expired", now.Add(-time.Second)}} {
			if err := st.CreateCabinetSession(ctx, s.id, u.ID, s.exp); err != nil {
				t.Fatal(err)
			}
		}
		if _, got, err := st.CabinetSessionUser(ctx, "live", now.Add(-time.Minute)); err != nil || got.ID != u.ID {
			t.Fatalf("live session: %v", err)
		}
		if _, _, err := st.CabinetSessionUser(ctx, "expired", now.Add(-time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a session past its absolute expiry works: %v", err)
		}
		// Idle: last seen before the idle limit.
		if _, _, err := st.CabinetSessionUser(ctx, "live", store.Now().Add(time.Second)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an idle session works: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
		mark := store.Now()
		if err := st.TouchCabinetSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.CabinetSessionUser(ctx, "live", mark.Add(-time.Millisecond)); err != nil {
			t.Fatalf("touching did not move the idle clock: %v", err)
		}
		if err := st.DeleteCabinetSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.CabinetSessionUser(ctx, "live", now.Add(-time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("signed-out session works")
		}
		if n, err := st.DeleteCabinetSessions(ctx, u.ID); err != nil || n != 2 {
			t.Fatalf("sign out everywhere: %d %v", n, err)
		}
	})
}

func TestLoginFailures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		start := store.Now()
		for range 3 {
			if err := st.RecordLoginFailure(ctx, map[string]string{store.LoginByAccount: "a@example.com", store.LoginByIP: "10.0.0.1"}, start.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if n, oldest, err := st.LoginFailures(ctx, store.LoginByAccount, "a@example.com", start.Add(-time.Minute)); err != nil || n != 3 || oldest.Before(start) {
			t.Fatalf("account failures: %d %v %v", n, oldest, err)
		}
		if n, _, _ := st.LoginFailures(ctx, store.LoginByIP, "10.0.0.1", start.Add(-time.Minute)); n != 3 {
			t.Fatalf("ip failures: %d", n)
		}
		// Outside the window they do not count.
		if n, _, _ := st.LoginFailures(ctx, store.LoginByAccount, "a@example.com", store.Now().Add(time.Second)); n != 0 {
			t.Fatalf("failures after the window: %d", n)
		}
		if err := st.ClearLoginFailures(ctx, store.LoginByAccount, "a@example.com"); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := st.LoginFailures(ctx, store.LoginByAccount, "a@example.com", start.Add(-time.Minute)); n != 0 {
			t.Fatalf("cleared failures: %d", n)
		}
		if n, _, _ := st.LoginFailures(ctx, store.LoginByIP, "10.0.0.1", start.Add(-time.Minute)); n != 3 {
			t.Fatalf("clearing the account cleared the address: %d", n)
		}
		// A later failure forgets every one older than its window.
		mark := store.Now()
		time.Sleep(2 * time.Millisecond)
		if err := st.RecordLoginFailure(ctx, map[string]string{store.LoginByAccount: "b@example.com"}, mark.Add(time.Microsecond)); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := st.LoginFailures(ctx, store.LoginByIP, "10.0.0.1", start.Add(-time.Minute)); n != 0 {
			t.Fatalf("failures older than the window were kept: %d", n)
		}
		if n, _, _ := st.LoginFailures(ctx, store.LoginByAccount, "b@example.com", start.Add(-time.Minute)); n != 1 {
			t.Fatalf("the new failure: %d", n)
		}
	})
}

func TestCabinetUserCRMLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		ws := defaultWS(t, st)
		f := newDialogFixture(t, st, ws, "1", "m1")
		a := &store.CabinetUser{WorkspaceID: ws, Email: "a@example.com", Role: store.RoleOwner, PasswordHash: "h"}
		b := &store.CabinetUser{WorkspaceID: ws, Email: "b@example.com", Role: store.RoleManager, PasswordHash: "h"}
		for _, u := range []*store.CabinetUser{a, b} {
			if err := st.CreateCabinetUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.ReplaceCabinetUserCRMLinks(ctx, a.ID, map[string]string{f.in.ID: "7"}); err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceCabinetUserCRMLinks(ctx, b.ID, map[string]string{f.in.ID: "7"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("one CRM user linked twice: %v", err)
		}
		links, err := st.CabinetUserCRMLinks(ctx, []string{a.ID, b.ID})
		if err != nil || links[a.ID][f.in.ID] != "7" || len(links[b.ID]) != 0 {
			t.Fatalf("links %v %v", links, err)
		}
		// Replacing with nothing unlinks.
		if err := st.ReplaceCabinetUserCRMLinks(ctx, a.ID, nil); err != nil {
			t.Fatal(err)
		}
		if links, _ := st.CabinetUserCRMLinks(ctx, []string{a.ID}); len(links) != 0 {
			t.Fatalf("links after unlinking: %v", links)
		}
	})
}

func TestIDAtOrdersWithIDs(t *testing.T) {
	before := store.IDAt(time.Now().Add(-time.Second))
	id := store.NewID()
	after := store.IDAt(time.Now().Add(time.Second))
	if !(before < id && id < after) {
		t.Fatalf("%s < %s < %s does not hold", before, id, after)
	}
}
