package bitrix24

import (
	"strings"
	"testing"
)

func goodBindings(s *Service) *portalBindings {
	p := &portalBindings{}
	for _, ev := range boundEvents {
		p.events = append(p.events, boundEvent{Event: strings.ToUpper(ev), Handler: s.eventsURL()})
	}
	for pl := range tabPlacements {
		p.placements = append(p.placements, boundPlacement{Placement: pl, Handler: s.tabURL()})
	}
	return p
}

// The read-back names what differs: a missing handler, a second one, a
// missing tab; a clean portal gives no reason.
func TestMismatchNamesWhatDiffers(t *testing.T) {
	s := &Service{cfg: Config{PublicURL: "https://gw.example/"}}
	if r := s.mismatch(goodBindings(s)); r != "" {
		t.Fatalf("clean portal: %q", r)
	}
	p := goodBindings(s)
	p.events = p.events[1:] // OnImConnectorMessageAdd gone
	p.events = append(p.events, boundEvent{Event: "ONAPPUNINSTALL", Handler: "https://old.example/bitrix24/events"})
	p.placements = p.placements[1:]
	r := s.mismatch(p)
	for _, want := range []string{"https://gw.example/bitrix24/events", "OnImConnectorMessageAdd: no handler",
		"OnAppUninstall: https://gw.example/bitrix24/events, https://old.example/bitrix24/events", ": none"} {
		if !strings.Contains(r, want) {
			t.Errorf("reason %q lacks %q", r, want)
		}
	}
}

// Only our stale bindings are unbound: not the current ones, not offline
// ones, not another placement's.
func TestStaleCommandsUnbindOnlyOursAndStale(t *testing.T) {
	s := &Service{cfg: Config{PublicURL: "https://gw.example"}}
	p := goodBindings(s)
	p.events = append(p.events,
		boundEvent{Event: "ONIMCONNECTORMESSAGEADD", Handler: "https://old.example/bitrix24/events"},
		boundEvent{Event: "ONIMCONNECTORDIALOGFINISH", Handler: "https://old.example/bitrix24/events"}, // an older version's
		boundEvent{Event: "ONIMCONNECTORMESSAGEADD"},                                                   // offline
		boundEvent{Event: "ONCRMDEALADD", Handler: "https://gw.example/other"})
	p.placements = append(p.placements,
		boundPlacement{Placement: "CRM_DEAL_DETAIL_TAB", Handler: "https://old.example/bitrix24/tab"},
		boundPlacement{Placement: "LEFT_MENU", Handler: "https://old.example/menu"})
	var got []string
	for _, c := range s.staleCommands(p) {
		got = append(got, c.Method+" "+EncodeForm(c.Params))
	}
	want := []string{
		"event.unbind event=ONIMCONNECTORMESSAGEADD&handler=https%3A%2F%2Fold.example%2Fbitrix24%2Fevents",
		"event.unbind event=ONIMCONNECTORDIALOGFINISH&handler=https%3A%2F%2Fold.example%2Fbitrix24%2Fevents",
		"placement.unbind HANDLER=https%3A%2F%2Fold.example%2Fbitrix24%2Ftab&PLACEMENT=CRM_DEAL_DETAIL_TAB",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// When placement.get fails, the tabs are left alone and only the events
// are judged.
func TestMismatchWithoutPlacements(t *testing.T) {
	s := &Service{cfg: Config{PublicURL: "https://gw.example"}}
	p := goodBindings(s)
	p.placements, p.noPlacements = nil, true
	if r := s.mismatch(p); r != "" {
		t.Fatalf("reason %q", r)
	}
}
