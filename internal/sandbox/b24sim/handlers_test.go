package b24sim

import (
	"context"
	"testing"
)

// As on a real portal, binding an event to a second handler keeps the
// first: both get every event (what doubled replies after a reinstall
// under another URL). event.unbind with a handler and placement.unbind
// with PLACEMENT and HANDLER remove only that binding.
func TestSecondHandlerIsKeptBesideTheFirst(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	oldH, newH := newHandlerStub(t), newHandlerStub(t)
	setupDialog(t, env, oldH.URL)
	env.ok(t, "event.bind", map[string]any{"event": "OnImConnectorMessageAdd", "handler": newH.URL})
	if _, err := env.sim.OperatorReply(context.Background(), testMemberID, "3", "79161234567", "hi"); err != nil {
		t.Fatal(err)
	}
	if len(oldH.received()) != 1 || len(newH.received()) != 1 {
		t.Fatalf("old handler got %d, new %d: both must get the event", len(oldH.received()), len(newH.received()))
	}
	env.ok(t, "event.unbind", map[string]any{"event": "OnImConnectorMessageAdd", "handler": oldH.URL})
	if _, err := env.sim.OperatorReply(context.Background(), testMemberID, "3", "79161234567", "again"); err != nil {
		t.Fatal(err)
	}
	if len(oldH.received()) != 1 || len(newH.received()) != 2 {
		t.Fatalf("after unbinding the old one: old %d, new %d", len(oldH.received()), len(newH.received()))
	}

	for _, h := range []string{"https://old.example/tab", "https://new.example/tab"} {
		env.ok(t, "placement.bind", map[string]any{"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": h, "TITLE": "WhatsApp"})
	}
	if n := len(env.portal.Placements()); n != 2 {
		t.Fatalf("%d tabs, want both kept", n)
	}
	env.ok(t, "placement.unbind", map[string]any{"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": "https://old.example/tab"})
	if ps := env.portal.Placements(); len(ps) != 1 || ps[0].Handler != "https://new.example/tab" {
		t.Fatalf("after unbinding the old tab: %+v", ps)
	}
}
