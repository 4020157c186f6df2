package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// feedOf reads a channel's feed the way the ingest path does, in a
// transaction of its own.
func feedOf(t *testing.T, st *store.Store, channelID string) *store.ChannelFeed {
	t.Helper()
	var f *store.ChannelFeed
	err := st.Tx(context.Background(), func(tx *gorm.DB) error {
		var err error
		f, err = st.FeedOf(tx, channelID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// bindingIDs lists a feed's bindings as "integration:state:mirror".
func bindingIDs(f *store.ChannelFeed) []string {
	out := []string{}
	for _, b := range f.Bindings {
		out = append(out, b.IntegrationID+":"+b.IntegrationState+":"+b.Mirror)
	}
	return out
}

// The feed cache never hides a change made through the store: bindings
// added, changed and removed, an integration's state moved (alone or in a
// transaction), routing put, an uninstall and a reinstall are all seen by
// the next message; a change behind the store's back is not (that is the
// cache) until ForgetFeeds; a channel in branch mode is read every time.
func TestFeedOfSeesStoreChangesAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := intakeStore(t, db)
		f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		in2 := newDialogFixture(t, st, f.ws, "2", "m2").in
		want := func(step string, ids ...string) {
			t.Helper()
			if ids == nil {
				ids = []string{}
			}
			if got := bindingIDs(feedOf(t, st, f.ch.ID)); !reflect.DeepEqual(got, ids) {
				t.Fatalf("%s: bindings %v, want %v", step, got, ids)
			}
		}
		first := feedOf(t, st, f.ch.ID)
		if first.Routing.Mode != store.RoutingAll || first.Routing.Config != "{}" || len(first.Bindings) != 0 {
			t.Fatalf("unbound channel's feed: %+v", first)
		}
		bind := func(in *store.Integration, mirror string) {
			t.Helper()
			if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: f.ws, IntegrationID: in.ID, ChannelID: f.ch.ID,
				Mode: "crm", Entity: "lead", Mirror: mirror}); err != nil {
				t.Fatal(err)
			}
		}
		bind(f.in, "each")
		want("bound", f.in.ID+":active:each")
		got := feedOf(t, st, f.ch.ID)
		b := got.Bindings[0]
		if b.IntegrationType != "bitrix24" || b.ChannelID != f.ch.ID || b.WorkspaceID != f.ws || b.Entity != "lead" ||
			b.OnRepeat != "last_closed" || b.CreatedAt.IsZero() || !b.Live() {
			t.Fatalf("binding read back: %+v", b)
		}
		got.Bindings[0].Mirror = "changed by a caller"
		want("a caller's copy is its own", f.in.ID+":active:each")

		bind(f.in, "hourly")
		want("binding changed", f.in.ID+":active:hourly")
		bind(in2, "each")
		want("second binding", f.in.ID+":active:hourly", in2.ID+":active:each")

		if err := st.SetIntegrationState(ctx, f.in.ID, store.IntegrationNeedsReauth, "test"); err != nil {
			t.Fatal(err)
		}
		want("state set", f.in.ID+":needs_reauth:hourly", in2.ID+":active:each")
		err := st.Tx(ctx, func(tx *gorm.DB) error {
			_, err := st.ChangeIntegrationState(tx, f.in.ID, []string{store.IntegrationNeedsReauth}, store.IntegrationActive, "")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want("state changed in a transaction", f.in.ID+":active:hourly", in2.ID+":active:each")

		if _, err := st.DeleteBinding(ctx, in2.ID, f.ch.ID); err != nil {
			t.Fatal(err)
		}
		want("unbound", f.in.ID+":active:hourly")

		// Behind the store's back: cached, until forgotten.
		if err := db.Gorm.Model(&store.ChannelBinding{}).Where("integration_id = ?", f.in.ID).Update("mirror", "daily").Error; err != nil {
			t.Fatal(err)
		}
		want("changed behind the store's back, cached", f.in.ID+":active:hourly")
		st.ForgetFeeds()
		want("forgotten", f.in.ID+":active:daily")

		if err := st.PutChannelRouting(ctx, &store.ChannelRouting{ChannelID: f.ch.ID, Mode: store.RoutingAll, Config: `{"x":1}`}); err != nil {
			t.Fatal(err)
		}
		if rt := feedOf(t, st, f.ch.ID).Routing; rt.Config != `{"x":1}` || rt.UpdatedAt.IsZero() {
			t.Fatalf("routing put not seen: %+v", rt)
		}
		err = st.Tx(ctx, func(tx *gorm.DB) error {
			return st.PutRoutingTx(tx, &store.ChannelRouting{ChannelID: f.ch.ID, Mode: store.RoutingBranch, Config: `{"y":2}`})
		})
		if err != nil {
			t.Fatal(err)
		}
		if rt := feedOf(t, st, f.ch.ID).Routing; rt.Mode != store.RoutingBranch || rt.Config != `{"y":2}` {
			t.Fatalf("routing put in a transaction not seen: %+v", rt)
		}
		// Branch mode is never cached: a change behind the store's back
		// is seen at once.
		if err := db.Gorm.Model(&store.ChannelBinding{}).Where("integration_id = ?", f.in.ID).Update("mirror", "each").Error; err != nil {
			t.Fatal(err)
		}
		want("branch mode, changed behind the store's back", f.in.ID+":active:each")
		if err := db.Gorm.Model(&store.ChannelRouting{}).Where("channel_id = ?", f.ch.ID).Update("mode", store.RoutingAll).Error; err != nil {
			t.Fatal(err)
		}
		if rt := feedOf(t, st, f.ch.ID).Routing; rt.Mode != store.RoutingAll {
			t.Fatalf("switch from branch mode behind the store's back not seen: %+v", rt)
		}

		want("cached again in mode all", f.in.ID+":active:each")
		if err := st.UninstallIntegration(ctx, f.in.ID, false, "test"); err != nil {
			t.Fatal(err)
		}
		want("uninstalled")
		bind(f.in, "each")
		want("bound while uninstalled", f.in.ID+":uninstalled:each")
		if _, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: "bitrix24", ExternalID: "m1", Domain: "m1.bitrix24.ru",
			WorkspaceID: f.ws, Secrets: store.IntegrationSecrets{RefreshToken: "r"}}); err != nil {
			t.Fatal(err)
		}
		want("reinstalled", f.in.ID+":active:each")
		n, err := st.DeleteBindingsByLine(ctx, f.in.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		_ = n // a crm-mode binding has no line: nothing deleted, nothing to see
		ws, err := st.CreateWorkspace(ctx, "other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.MoveChannel(ctx, f.ch.ID, ws.ID); err != nil {
			t.Fatal(err)
		}
		want("channel moved to another workspace")
	})
}

// A change committed by a transaction is seen once it commits, though a
// message stored meanwhile (another connection) read and cached the old
// rows between the change's write and its commit. PostgreSQL only: the
// SQLite pool's one connection cannot read beside an open transaction.
func TestFeedOfForgetsWhatWasReadBeforeACommit(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	db := storetest.Postgres(t)
	ctx := context.Background()
	st := intakeStore(t, db)
	f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
	if err := st.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: f.ws, IntegrationID: f.in.ID, ChannelID: f.ch.ID, Mode: "crm"}); err != nil {
		t.Fatal(err)
	}
	err := st.Tx(ctx, func(tx *gorm.DB) error {
		if _, err := st.ChangeIntegrationState(tx, f.in.ID, []string{store.IntegrationActive}, store.IntegrationUnpaid, "test"); err != nil {
			return err
		}
		// Another delivery, before the commit: the old state, cached.
		if got := feedOf(t, st, f.ch.ID); got.Bindings[0].IntegrationState != store.IntegrationActive {
			t.Errorf("uncommitted state seen by another transaction: %+v", got.Bindings[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := feedOf(t, st, f.ch.ID); got.Bindings[0].IntegrationState != store.IntegrationUnpaid {
		t.Fatalf("committed state not seen after the commit: %+v", got.Bindings[0])
	}
}

// InsertMessage's hand-written INSERT writes every field of Message (a
// field added to the model but not to the statement fails here), and a
// redelivery of the same wamid inserts nothing.
func TestInsertMessageWritesEveryField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := intakeStore(t, db)
		ch := newChannel(t, st)
		ct, err := store.UpsertContact(db.Gorm, ch, channel.Customer{ExternalID: "7701"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		media := &store.Media{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, State: store.MediaPending, CreatedAt: base, UpdatedAt: base}
		if err := store.InsertMedia(db.Gorm, media); err != nil {
			t.Fatal(err)
		}
		m := &store.Message{}
		v := reflect.ValueOf(m).Elem()
		for i := range v.NumField() {
			fv := v.Field(i)
			s := "v" + v.Type().Field(i).Name
			at := base.Add(time.Duration(i) * time.Minute)
			switch p := fv.Addr().Interface().(type) {
			case *string:
				*p = s
			case **string:
				*p = &s
			case *bool:
				*p = true
			case *int:
				*p = 400 + i
			case **time.Time:
				*p = &at
			case *time.Time:
				// created_at and updated_at are InsertMessage's own.
			default:
				t.Fatalf("field %s of a type this test does not fill", v.Type().Field(i).Name)
			}
		}
		m.ID, m.WorkspaceID, m.ChannelID, m.ContactID, m.MediaID = "", ch.WorkspaceID, ch.ID, ct.ID, &media.ID
		ok, err := store.InsertMessage(db.Gorm, m)
		if err != nil || !ok || m.ID == "" || m.CreatedAt.IsZero() {
			t.Fatalf("insert: %v %v %+v", ok, err, m)
		}
		var got store.Message
		if err := db.Gorm.Where("id = ?", m.ID).First(&got).Error; err != nil {
			t.Fatal(err)
		}
		gv, wv := reflect.ValueOf(got), reflect.ValueOf(*m)
		for i := range gv.NumField() {
			name := gv.Type().Field(i).Name
			g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
			switch w := w.(type) {
			case time.Time:
				if !g.(time.Time).Equal(w) {
					t.Errorf("%s: read back %v, wrote %v", name, g, w)
				}
			case *time.Time:
				if gt := g.(*time.Time); gt == nil || !gt.Equal(*w) {
					t.Errorf("%s: read back %v, wrote %v", name, gt, *w)
				}
			default:
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s: read back %#v, wrote %#v", name, g, w)
				}
			}
		}
		again := &store.Message{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ContactID: ct.ID, Direction: store.Inbound,
			Type: "text", Status: "received", ExternalID: m.ExternalID}
		if ok, err := store.InsertMessage(db.Gorm, again); err != nil || ok {
			t.Fatalf("redelivery inserted: %v %v", ok, err)
		}
	})
}

// ArmDialogNotices claims a waiting period once, returning the dialog, the
// period's start and the integration's settings; the next period is
// claimed again.
func TestArmDialogNoticesOncePerPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := intakeStore(t, db)
		f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		k := f.key(t, "7701")
		settings := `{"notify_after_seconds":60}`
		if err := db.Gorm.Model(&store.Integration{}).Where("id = ?", f.in.ID).Update("settings", settings).Error; err != nil {
			t.Fatal(err)
		}
		arm := func() *store.DialogArm {
			t.Helper()
			a, err := store.ArmDialogNotices(db.Gorm, k)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		if a := arm(); a != nil {
			t.Fatalf("armed a dialog that does not exist: %+v", a)
		}
		t1 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		if err := store.DialogInbound(db.Gorm, k, t1, true); err != nil {
			t.Fatal(err)
		}
		a := arm()
		if a == nil || a.DialogID == "" || !a.WaitingSince.Equal(t1) || a.IntegrationSettings == nil || *a.IntegrationSettings != settings {
			t.Fatalf("first arm: %+v", a)
		}
		if err := store.DialogInbound(db.Gorm, k, t1.Add(time.Minute), true); err != nil {
			t.Fatal(err)
		}
		if again := arm(); again != nil {
			t.Fatalf("same period armed twice: %+v", again)
		}
		if err := store.DialogOutbound(db.Gorm, k, t1.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		t2 := t1.Add(3 * time.Minute)
		if err := store.DialogInbound(db.Gorm, k, t2, true); err != nil {
			t.Fatal(err)
		}
		if next := arm(); next == nil || next.DialogID != a.DialogID || !next.WaitingSince.Equal(t2) {
			t.Fatalf("next period: %+v", next)
		}
	})
}
