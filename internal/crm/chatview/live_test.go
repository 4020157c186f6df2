package chatview

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/store"
)

// quietHub is a hub whose poll is not started: the test hands it what a
// poll would have found.
func quietHub(cursor time.Time) *chatHub {
	h := newChatHub(nil, nil)
	h.running, h.cursor = true, cursor
	return h
}

func pending(s *chatSub) (chatEvent, int64, bool) {
	select {
	case <-s.wake:
		ev, id := s.take()
		slices.Sort(ev.Contacts)
		return ev, id, true
	default:
		return chatEvent{}, 0, false
	}
}

func TestChatHubDeliversByWorkspaceOnce(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	h := quietHub(t0)
	a, b := h.subscribe("ws-a", nil, 0), h.subscribe("ws-b", nil, 0)
	if _, _, ok := pending(a); ok {
		t.Fatal("a new stream without Last-Event-ID starts with an event")
	}
	h.deliver([]store.MessageChange{
		{ID: "m1", WorkspaceID: "ws-a", ContactID: "c1", UpdatedAt: t0.Add(time.Second)},
		{ID: "m2", WorkspaceID: "ws-a", ContactID: "c2", UpdatedAt: t0.Add(2 * time.Second)},
		{ID: "m3", WorkspaceID: "ws-c", ContactID: "c9", UpdatedAt: t0.Add(3 * time.Second)},
	})
	ev, id, ok := pending(a)
	if !ok || ev.All || !slices.Equal(ev.Contacts, []string{"c1", "c2"}) || id != t0.Add(3*time.Second).UnixMicro() {
		t.Fatalf("workspace a: %v %+v %d", ok, ev, id)
	}
	if ev, _, ok := pending(b); ok {
		t.Fatalf("workspace b heard of another workspace's customers: %+v", ev)
	}
	// The next poll reaches back over the overlap and finds the same
	// changes again: told once. A status change of m1 is news.
	h.deliver([]store.MessageChange{
		{ID: "m1", WorkspaceID: "ws-a", ContactID: "c1", UpdatedAt: t0.Add(time.Second)},
		{ID: "m2", WorkspaceID: "ws-a", ContactID: "c2", UpdatedAt: t0.Add(2 * time.Second)},
	})
	if ev, _, ok := pending(a); ok {
		t.Fatalf("told twice: %+v", ev)
	}
	h.deliver([]store.MessageChange{{ID: "m1", WorkspaceID: "ws-a", ContactID: "c1", UpdatedAt: t0.Add(4 * time.Second)}})
	if ev, _, ok := pending(a); !ok || !slices.Equal(ev.Contacts, []string{"c1"}) {
		t.Fatalf("a status change: %v %+v", ok, ev)
	}
	// A stream that falls behind gets one event; too many customers
	// become "everything".
	var many []store.MessageChange
	for i := 0; i <= chatMaxContacts; i++ {
		many = append(many, store.MessageChange{ID: fmt.Sprint("n", i), WorkspaceID: "ws-b", ContactID: fmt.Sprint("c", i), UpdatedAt: t0.Add(5 * time.Second)})
	}
	h.deliver(many[:10])
	h.deliver(many[10:])
	if ev, _, ok := pending(b); !ok || !ev.All || len(ev.Contacts) != 0 {
		t.Fatalf("a flood: %v %+v", ok, ev)
	}
	if _, _, ok := pending(b); ok {
		t.Fatal("two events for one pile")
	}
	// Reconnecting with an id from before the cursor: "everything"; with
	// the current one: nothing to catch up.
	if ev, _, ok := pending(h.subscribe("ws-a", nil, t0.UnixMicro())); !ok || !ev.All {
		t.Fatalf("reconnect from before: %v %+v", ok, ev)
	}
	if _, _, ok := pending(h.subscribe("ws-a", nil, h.cursor.UnixMicro())); ok {
		t.Fatal("reconnect from the present asked for everything")
	}
	h.unsubscribe(b)
	if len(h.subs["ws-b"]) != 0 {
		t.Fatal("unsubscribed stream kept")
	}
}

// A card page's stream hears only of the customers its ticket names: not
// of a hidden customer of the same workspace, not of another workspace,
// and a catch-up "everything" names its own customers only.
func TestChatHubCardStreamOnlyItsCustomers(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	h := quietHub(t0)
	card := h.subscribe("ws-a", []string{"c1"}, 0)
	none := h.subscribe("ws-a", []string{}, 0)
	h.deliver([]store.MessageChange{
		{ID: "m1", WorkspaceID: "ws-a", ContactID: "hidden", UpdatedAt: t0.Add(time.Second)},
		{ID: "m2", WorkspaceID: "ws-b", ContactID: "c1", UpdatedAt: t0.Add(time.Second)},
	})
	if ev, _, ok := pending(card); ok {
		t.Fatalf("a card stream heard of someone else: %+v", ev)
	}
	h.deliver([]store.MessageChange{
		{ID: "m3", WorkspaceID: "ws-a", ContactID: "c1", UpdatedAt: t0.Add(2 * time.Second)},
		{ID: "m4", WorkspaceID: "ws-a", ContactID: "hidden", UpdatedAt: t0.Add(2 * time.Second)},
	})
	if ev, _, ok := pending(card); !ok || ev.All || !slices.Equal(ev.Contacts, []string{"c1"}) {
		t.Fatalf("the card's own customer: %v %+v", ok, ev)
	}
	if ev, _, ok := pending(none); ok {
		t.Fatalf("a stream of no customers heard: %+v", ev)
	}
	if ev, _, ok := pending(h.subscribe("ws-a", []string{"c1"}, t0.UnixMicro())); !ok || ev.All || !slices.Equal(ev.Contacts, []string{"c1"}) {
		t.Fatalf("a card's catch-up: %v %+v", ok, ev)
	}
}
