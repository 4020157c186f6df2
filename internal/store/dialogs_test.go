package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// dialogFixture is a workspace with a channel, a CRM integration and
// customers, the dialogs' keys made of them.
type dialogFixture struct {
	st *store.Store
	ws string
	ch *store.Channel
	in *store.Integration
}

func newDialogFixture(t *testing.T, st *store.Store, ws, account, member string) *dialogFixture {
	t.Helper()
	ctx := context.Background()
	ch := &store.Channel{WorkspaceID: ws, Type: "whatsapp", Name: "wa", AccountID: account}
	if err := st.CreateChannel(ctx, ch, "tok"); err != nil {
		t.Fatal(err)
	}
	in, _, err := st.UpsertIntegration(ctx, store.InstallParams{Type: "bitrix24", ExternalID: member, Domain: member + ".bitrix24.ru",
		WorkspaceID: ws, Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	return &dialogFixture{st: st, ws: ws, ch: ch, in: in}
}

// key makes (or finds) the customer and returns the dialog's key.
func (f *dialogFixture) key(t *testing.T, customer string) store.DialogKey {
	t.Helper()
	ct, err := store.UpsertContact(f.st.DB.Gorm, f.ch, channel.Customer{ExternalID: customer, Phone: "+" + customer, Name: "Анна"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return store.DialogKey{WorkspaceID: f.ws, IntegrationID: f.in.ID, ChannelID: f.ch.ID, ContactID: ct.ID}
}

func defaultWS(t *testing.T, st *store.Store) string {
	t.Helper()
	ws, err := st.EnsureDefaultWorkspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ws.ID
}

func find(t *testing.T, st *store.Store, k store.DialogKey) *store.DialogView {
	t.Helper()
	d, err := st.FindDialog(context.Background(), k)
	if err != nil {
		t.Fatalf("find dialog: %v", err)
	}
	return d
}

func sameTime(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }

// The life of one conversation: the customer writes twice, is answered,
// writes again, and an operator says no reply is needed.
func TestDialogFollowsTheConversation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		k := f.key(t, "79161234567")
		g := db.Gorm
		t0 := time.Date(2026, 11, 30, 9, 0, 0, 123456000, time.UTC)
		at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

		if err := store.DialogInbound(g, k, at(0), true); err != nil {
			t.Fatal(err)
		}
		if err := store.DialogInbound(g, k, at(5), true); err != nil {
			t.Fatal(err)
		}
		d := find(t, st, k)
		if d.UnreadCount != 2 || !d.Waiting || !sameTime(d.WaitingSince, at(0)) || !sameTime(d.LastInboundAt, at(5)) ||
			d.LastOutboundAt != nil || !d.LastMessageAt.Equal(at(5)) || d.WorkspaceID != f.ws {
			t.Fatalf("after two messages: %+v", d.Dialog)
		}
		if d.Contact == nil || d.Contact.ExternalID != "79161234567" {
			t.Fatalf("dialog's customer: %+v", d.Contact)
		}
		var n int64
		if err := g.Model(&store.Dialog{}).Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("%d dialogs (%v), want one", n, err)
		}

		if err := store.DialogOutbound(g, k, at(10)); err != nil {
			t.Fatal(err)
		}
		d = find(t, st, k)
		if d.UnreadCount != 0 || d.Waiting || d.WaitingSince != nil || !sameTime(d.LastOutboundAt, at(10)) ||
			!sameTime(d.LastInboundAt, at(5)) || !d.LastMessageAt.Equal(at(10)) {
			t.Fatalf("after the answer: %+v", d.Dialog)
		}

		// A reaction is read as a message, not as a question.
		if err := store.DialogInbound(g, k, at(12), false); err != nil {
			t.Fatal(err)
		}
		d = find(t, st, k)
		if d.UnreadCount != 1 || d.Waiting || d.WaitingSince != nil || !sameTime(d.LastInboundAt, at(12)) {
			t.Fatalf("after a reaction: %+v", d.Dialog)
		}

		if err := store.DialogInbound(g, k, at(20), true); err != nil {
			t.Fatal(err)
		}
		// A message that was held up arrives after a newer one: counted,
		// but the times do not go back and the wait does not restart.
		if err := store.DialogInbound(g, k, at(15), true); err != nil {
			t.Fatal(err)
		}
		d = find(t, st, k)
		if d.UnreadCount != 3 || !d.Waiting || !sameTime(d.WaitingSince, at(20)) || !sameTime(d.LastInboundAt, at(20)) ||
			!d.LastMessageAt.Equal(at(20)) {
			t.Fatalf("waiting again: %+v", d.Dialog)
		}

		got, err := st.DialogNoReplyNeeded(context.Background(), store.All, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Waiting || got.WaitingSince != nil || got.NoReplyNeededAt == nil || got.UnreadCount != 3 {
			t.Fatalf("after no-reply-needed: %+v", got.Dialog)
		}
		again, err := st.DialogNoReplyNeeded(context.Background(), store.All, d.ID)
		if err != nil || !again.NoReplyNeededAt.Equal(*got.NoReplyNeededAt) {
			t.Fatalf("a second no-reply-needed moved the mark: %v → %v (%v)", got.NoReplyNeededAt, again.NoReplyNeededAt, err)
		}
	})
}

// A business that writes first starts a dialog that waits for nobody.
func TestDialogStartedByTheBusiness(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		k := f.key(t, "79161234567")
		at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
		if err := store.DialogOutbound(db.Gorm, k, at); err != nil {
			t.Fatal(err)
		}
		d := find(t, st, k)
		if d.Waiting || d.UnreadCount != 0 || d.LastInboundAt != nil || !sameTime(d.LastOutboundAt, at) || !d.LastMessageAt.Equal(at) {
			t.Fatalf("%+v", d.Dialog)
		}
	})
}

// Every message of a burst is counted once, whatever the interleaving.
func TestDialogInboundConcurrently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		k := f.key(t, "79161234567")
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs[i] = st.Tx(context.Background(), func(tx *gorm.DB) error {
					return store.DialogInbound(tx, k, base.Add(time.Duration(i)*time.Second), true)
				})
			}(i)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		d := find(t, st, k)
		if d.UnreadCount != n || !d.Waiting || !sameTime(d.LastInboundAt, base.Add((n-1)*time.Second)) {
			t.Fatalf("%+v", d.Dialog)
		}
	})
}

// A connector records the CRM record and owner it made; first responders
// race for an unassigned dialog and exactly one wins.
func TestDialogCRMRecordAndOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		f := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		k := f.key(t, "79161234567")
		g := db.Gorm
		// No message yet (a conversation from before dialogs): created.
		if err := store.SetDialogCRM(g, k, store.DialogCRM{Entity: "deal", EntityID: "42", OwnerUserID: "7"}); err != nil {
			t.Fatal(err)
		}
		d := find(t, st, k)
		if d.CRMEntity != "deal" || d.CRMEntityID != "42" || d.OwnerUserID != "7" || d.Waiting || d.UnreadCount != 0 {
			t.Fatalf("created by the connector: %+v", d.Dialog)
		}
		if err := store.DialogInbound(g, k, time.Now(), true); err != nil {
			t.Fatal(err)
		}
		// Without an owner the record changes and the owner stays.
		if err := store.SetDialogCRM(g, k, store.DialogCRM{Entity: "lead", EntityID: "9"}); err != nil {
			t.Fatal(err)
		}
		d = find(t, st, k)
		if d.CRMEntity != "lead" || d.CRMEntityID != "9" || d.OwnerUserID != "7" || d.UnreadCount != 1 || !d.Waiting {
			t.Fatalf("after a new record: %+v", d.Dialog)
		}
		if err := store.SetDialogCRM(g, k, store.DialogCRM{Entity: "lead"}); err == nil {
			t.Fatal("a record without an id was accepted")
		}

		if ok, err := store.SetDialogOwner(g, k, "8", true); err != nil || ok {
			t.Fatalf("onlyUnassigned took an owned dialog: %v %v", ok, err)
		}
		if ok, err := store.SetDialogOwner(g, k, "", false); err != nil || !ok {
			t.Fatalf("unassign: %v %v", ok, err)
		}
		if ok, err := store.SetDialogOwner(g, k, "8", true); err != nil || !ok {
			t.Fatalf("first responder: %v %v", ok, err)
		}
		if ok, err := store.SetDialogOwner(g, k, "9", true); err != nil || ok {
			t.Fatalf("second responder: %v %v", ok, err)
		}
		if d = find(t, st, k); d.OwnerUserID != "8" {
			t.Fatalf("owner %q", d.OwnerUserID)
		}
	})
}

func TestDialogCursor(t *testing.T) {
	c := store.DialogCursor{At: time.Date(2026, 11, 30, 9, 0, 0, 123456000, time.UTC), ID: store.NewID()}
	back, err := store.ParseDialogCursor(c.String())
	if err != nil || !back.At.Equal(c.At) || back.ID != c.ID {
		t.Fatalf("round trip %v → %q → %v (%v)", c, c.String(), back, err)
	}
	for _, bad := range []string{"", "_", "123", "123_", "_" + c.ID, "12a_" + c.ID, "-5_" + c.ID, "+5_" + c.ID,
		"1_" + c.ID + "x", "1_abc", "99999999999999999999_" + c.ID} {
		if _, err := store.ParseDialogCursor(bad); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Lists are scoped to the workspace, filtered, newest activity first
// (ties broken by id), and the pages together hold every dialog once.
func TestListDialogs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := testStore(t, db)
		a := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		other, err := st.CreateWorkspace(ctx, "other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		b := newDialogFixture(t, st, other.ID, "2", "m2")
		g := db.Gorm
		base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
		var keys []store.DialogKey
		for i := 0; i < 11; i++ {
			k := a.key(t, fmt.Sprintf("7916000%04d", i))
			keys = append(keys, k)
			// Pairs share a time, so the id decides between them.
			if err := store.DialogInbound(g, k, base.Add(time.Duration(i/2)*time.Minute), true); err != nil {
				t.Fatal(err)
			}
		}
		// Three answered, two owned by user 5.
		for _, i := range []int{1, 4, 7} {
			if err := store.DialogOutbound(g, keys[i], base.Add(time.Hour+time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		for _, i := range []int{2, 4} {
			if _, err := store.SetDialogOwner(g, keys[i], "5", false); err != nil {
				t.Fatal(err)
			}
		}
		kb := b.key(t, "77010000000")
		if err := store.DialogInbound(g, kb, base.Add(2*time.Hour), true); err != nil {
			t.Fatal(err)
		}

		list := func(scope store.Scope, f store.DialogFilter, limit int) []store.DialogView {
			t.Helper()
			var all []store.DialogView
			var after *store.DialogCursor
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatal("paging does not end")
				}
				ds, next, err := st.ListDialogs(ctx, scope, f, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) > limit {
					t.Fatalf("page of %d, limit %d", len(ds), limit)
				}
				all = append(all, ds...)
				if next == nil {
					return all
				}
				// The cursor goes through its text form, as the API's does.
				c, err := store.ParseDialogCursor(next.String())
				if err != nil {
					t.Fatal(err)
				}
				after = &c
			}
		}
		wsA := store.Scope{WorkspaceID: a.ws}
		all := list(wsA, store.DialogFilter{}, 100)
		if len(all) != 11 {
			t.Fatalf("%d dialogs in workspace a, want 11", len(all))
		}
		for i := 1; i < len(all); i++ {
			p, c := all[i-1], all[i]
			if p.LastMessageAt.Before(c.LastMessageAt) || p.LastMessageAt.Equal(c.LastMessageAt) && p.ID < c.ID {
				t.Fatalf("out of order at %d: %v %s then %v %s", i, p.LastMessageAt, p.ID, c.LastMessageAt, c.ID)
			}
		}
		if all[0].ContactID != keys[7].ContactID || all[0].Contact == nil {
			t.Fatalf("the latest answered dialog is not first: %+v", all[0])
		}
		for _, limit := range []int{1, 2, 3, 5} {
			paged := list(wsA, store.DialogFilter{}, limit)
			if len(paged) != len(all) {
				t.Fatalf("limit %d: %d dialogs over the pages, want %d", limit, len(paged), len(all))
			}
			for i := range paged {
				if paged[i].ID != all[i].ID {
					t.Fatalf("limit %d: page order differs at %d", limit, i)
				}
			}
		}

		yes, no, five, nobody := true, false, "5", ""
		count := func(scope store.Scope, f store.DialogFilter) int { return len(list(scope, f, 4)) }
		for _, c := range []struct {
			name  string
			scope store.Scope
			f     store.DialogFilter
			want  int
		}{
			{"operator sees both workspaces", store.All, store.DialogFilter{}, 12},
			{"workspace b", store.Scope{WorkspaceID: b.ws}, store.DialogFilter{}, 1},
			{"waiting", wsA, store.DialogFilter{Waiting: &yes}, 8},
			{"answered", wsA, store.DialogFilter{Waiting: &no}, 3},
			{"owner 5", wsA, store.DialogFilter{Owner: &five}, 2},
			{"unassigned", wsA, store.DialogFilter{Owner: &nobody}, 9},
			{"owner 5 waiting", wsA, store.DialogFilter{Owner: &five, Waiting: &yes}, 1},
			{"integration a", store.All, store.DialogFilter{IntegrationID: a.in.ID}, 11},
			{"channel b", store.All, store.DialogFilter{ChannelID: b.ch.ID}, 1},
			{"b's channel from workspace a", wsA, store.DialogFilter{ChannelID: b.ch.ID}, 0},
			{"b's integration from workspace a", wsA, store.DialogFilter{IntegrationID: b.in.ID}, 0},
		} {
			if got := count(c.scope, c.f); got != c.want {
				t.Errorf("%s: %d dialogs, want %d", c.name, got, c.want)
			}
		}

		db2 := find(t, st, kb)
		if _, err := st.GetDialog(ctx, wsA, db2.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("workspace a read b's dialog: %v", err)
		}
		if _, err := st.DialogNoReplyNeeded(ctx, wsA, db2.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("workspace a marked b's dialog: %v", err)
		}
		if d := find(t, st, kb); !d.Waiting || d.NoReplyNeededAt != nil {
			t.Fatalf("b's dialog changed through workspace a: %+v", d.Dialog)
		}
		if d, err := st.GetDialog(ctx, store.Scope{WorkspaceID: b.ws}, db2.ID); err != nil || d.ID != db2.ID {
			t.Fatalf("b reads its own dialog: %v", err)
		}
	})
}

// A channel moved to another workspace leaves its dialogs behind with the
// integrations they belong to.
func TestMoveChannelDropsItsDialogs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := testStore(t, db)
		a := newDialogFixture(t, st, defaultWS(t, st), "1", "m1")
		k := a.key(t, "79161234567")
		if err := store.DialogInbound(db.Gorm, k, time.Now(), true); err != nil {
			t.Fatal(err)
		}
		other, err := st.CreateWorkspace(ctx, "other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.MoveChannel(ctx, a.ch.ID, other.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.FindDialog(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the moved channel's dialog is still there: %v", err)
		}
	})
}
