package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// cells is a matrix as "user/channel=level[*]" strings (* = default), in
// the store's order, so comparisons read.
func cells(t *testing.T, st *store.Store, integrationID string, chName map[string]string) []string {
	t.Helper()
	rows, err := st.AccessMatrix(context.Background(), integrationID)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, r := range rows {
		c := r.UserID + "/" + chName[r.ChannelID] + "=" + r.Level
		if r.IsDefault {
			c += "*"
		}
		out = append(out, c)
	}
	return out
}

func TestCRMUsersReplaceDeactivates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		if err := st.ReplaceCRMUsers(ctx, f.in.ID, []store.CRMUser{{UserID: "1", Name: "Ivan", Active: true}, {UserID: "2", Name: "Olga", Active: true}, {UserID: "3", Name: "Petr", Active: true}}); err != nil {
			t.Fatal(err)
		}
		// 2 is listed but deactivated, 3 is no longer listed, 4 is new.
		if err := st.ReplaceCRMUsers(ctx, f.in.ID, []store.CRMUser{{UserID: "1", Name: "Ivan P", Active: true}, {UserID: "2", Name: "Olga", Active: false}, {UserID: "4", Name: "Anna", Active: true}}); err != nil {
			t.Fatal(err)
		}
		us, err := st.CRMUsers(ctx, f.in.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, u := range us {
			got[u.UserID+":"+u.Name] = u.Active
		}
		want := map[string]bool{"1:Ivan P": true, "2:Olga": false, "3:Petr": false, "4:Anna": true}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("users %v, want %v", got, want)
		}
		// An empty list (a CRM that lists nobody) deactivates everyone.
		if err := st.ReplaceCRMUsers(ctx, f.in.ID, nil); err != nil {
			t.Fatal(err)
		}
		us, err = st.CRMUsers(ctx, f.in.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			if u.Active {
				t.Errorf("user %s still active", u.UserID)
			}
		}
	})
}

func TestAccessMatrixRulesInTheStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		ch2 := &store.Channel{WorkspaceID: f.ws, Type: "whatsapp", Name: "wa2", AccountID: "2"}
		if err := st.CreateChannel(ctx, ch2, "tok"); err != nil {
			t.Fatal(err)
		}
		names := map[string]string{f.ch.ID: "a", ch2.ID: "b"}
		if err := st.ReplaceCRMUsers(ctx, f.in.ID, []store.CRMUser{{UserID: "1", Active: true}, {UserID: "2", Active: true}, {UserID: "3", Active: false}}); err != nil {
			t.Fatal(err)
		}
		good := []store.ChannelAccess{
			{UserID: "1", ChannelID: f.ch.ID, Level: store.AccessSend, IsDefault: true},
			{UserID: "1", ChannelID: ch2.ID, Level: store.AccessRead},
			{UserID: "2", ChannelID: f.ch.ID, Level: store.AccessNone},
			{UserID: "2", ChannelID: ch2.ID, Level: store.AccessSend},
			{UserID: "3", ChannelID: f.ch.ID, Level: store.AccessRead},
		}
		if err := st.ReplaceAccess(ctx, f.in.ID, good); err != nil {
			t.Fatal(err)
		}
		want := []string{"1/a=send*", "1/b=read", "2/b=send", "3/a=read"}
		if got := cells(t, st, f.in.ID, names); !reflect.DeepEqual(got, want) {
			t.Fatalf("matrix %v, want %v", got, want)
		}
		for _, c := range []struct{ user, ch, want string }{{"1", f.ch.ID, "send"}, {"1", ch2.ID, "read"}, {"2", f.ch.ID, "none"}, {"9", f.ch.ID, "none"}} {
			if lv, err := st.AccessLevel(ctx, f.in.ID, c.user, c.ch); err != nil || lv != c.want {
				t.Errorf("level %s/%s = %q %v, want %q", c.user, names[c.ch], lv, err, c.want)
			}
		}
		// Escalation reaches the active users who can at least read.
		if us, err := st.UsersWithAccess(ctx, f.in.ID, f.ch.ID); err != nil || !reflect.DeepEqual(us, []string{"1"}) {
			t.Errorf("users with access to a: %v %v", us, err)
		}

		bad := map[string][]store.ChannelAccess{
			"two defaults":    {{UserID: "1", ChannelID: f.ch.ID, Level: store.AccessSend, IsDefault: true}, {UserID: "1", ChannelID: ch2.ID, Level: store.AccessSend, IsDefault: true}},
			"default on read": {{UserID: "1", ChannelID: f.ch.ID, Level: store.AccessRead, IsDefault: true}},
			"unknown level":   {{UserID: "1", ChannelID: f.ch.ID, Level: "write"}},
		}
		for name, rows := range bad {
			if err := st.ReplaceAccess(ctx, f.in.ID, rows); !errors.Is(err, store.ErrAccessInvalid) {
				t.Errorf("%s: %v, want ErrAccessInvalid", name, err)
			}
			if got := cells(t, st, f.in.ID, names); !reflect.DeepEqual(got, want) {
				t.Errorf("%s changed the matrix: %v", name, got)
			}
		}
		// The table itself holds one default per user, whoever writes.
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			return tx.Model(&store.ChannelAccess{}).Where("integration_id = ? AND user_id = ? AND channel_id = ?", f.in.ID, "1", ch2.ID).
				Updates(map[string]any{"level": store.AccessSend, "is_default": true}).Error
		})
		if err == nil {
			t.Error("the table took a second default for one user")
		}

		// Settings and matrix go together: a refused matrix keeps the
		// old settings.
		twoDefaults := bad["two defaults"]
		if err := st.PutRoutingSettings(ctx, f.in.ID, `{"visibility":"own"}`, &twoDefaults); !errors.Is(err, store.ErrAccessInvalid) {
			t.Fatalf("put settings with a bad matrix: %v", err)
		}
		in, err := st.GetIntegration(ctx, store.All, f.in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if in.Settings != nil && *in.Settings != "" {
			t.Errorf("settings written with a refused matrix: %s", *in.Settings)
		}
		empty := []store.ChannelAccess{}
		if err := st.PutRoutingSettings(ctx, f.in.ID, `{"visibility":"own"}`, &empty); err != nil {
			t.Fatal(err)
		}
		if in, err = st.GetIntegration(ctx, store.All, f.in.ID); err != nil || in.Settings == nil || *in.Settings != `{"visibility":"own"}` {
			t.Errorf("settings not written: %v", err)
		}
		if got := cells(t, st, f.in.ID, names); len(got) != 0 {
			t.Errorf("matrix not cleared: %v", got)
		}
		if err := st.PutRoutingSettings(ctx, "nope", `{}`, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown integration: %v", err)
		}
	})
}
