package app_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/crm/bitrix24"
)

// integrationState reads the portal's state and reason from the API.
func integrationState(e *apptest.Env) (state, reason string) {
	_, list := e.Do("GET", "/api/v1/integrations", nil)
	for _, v := range list["data"].([]any) {
		m := v.(map[string]any)
		if m["type"] == "bitrix24" {
			r, _ := m["state_reason"].(string)
			return m["state"].(string), r
		}
	}
	return "", ""
}

// A reinstall after the gateway's public URL changed leaves the portal
// with exactly one handler per event and one tab per card, all ours
// (issue 6, item 2): Bitrix24 keeps an earlier handler beside a new one.
func TestBitrix24ReinstallReplacesStaleHandlers(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, _ := e.InstallBitrix24()
		e.WaitIdle()
		// What an install under the old public URL left on the portal.
		old := "https://old-gateway.example"
		for _, ev := range []string{"OnImConnectorMessageAdd", "OnImConnectorMessageUpdate", "OnAppUninstall"} {
			if err := e.App.Bitrix24.Client().Call(context.Background(), integ, "event.bind",
				map[string]any{"event": ev, "handler": old + "/bitrix24/events"}, nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, pl := range []string{"CRM_DEAL_DETAIL_TAB", "CRM_LEAD_DETAIL_TAB"} {
			if err := e.App.Bitrix24.Client().Call(context.Background(), integ, "placement.bind",
				map[string]any{"PLACEMENT": pl, "HANDLER": old + "/bitrix24/tab", "TITLE": "WhatsApp / Instagram"}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.App.Bitrix24.Client().Call(context.Background(), integ, "bizproc.robot.update",
			map[string]any{"CODE": bitrix24.RobotCode, "FIELDS": map[string]any{"HANDLER": old + "/bitrix24/robot"}}, nil); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.B24.PostInstallEvent(context.Background(), apptest.B24MemberID, e.URL+"/bitrix24/install", "ru"); st != http.StatusOK {
			t.Fatalf("reinstall: %d", st)
		}
		e.WaitIdle()
		perEvent := map[string][]string{}
		for _, b := range e.Portal.Events() {
			perEvent[strings.ToUpper(b.Event)] = append(perEvent[strings.ToUpper(b.Event)], b.Handler)
		}
		if len(perEvent) != 6 {
			t.Errorf("events bound: %v", perEvent)
		}
		for ev, hs := range perEvent {
			if len(hs) != 1 || hs[0] != e.URL+"/bitrix24/events" {
				t.Errorf("%s goes to %v, want only %s", ev, hs, e.URL+"/bitrix24/events")
			}
		}
		perTab := map[string][]string{}
		for _, p := range e.Portal.Placements() {
			perTab[p.Placement] = append(perTab[p.Placement], p.Handler)
		}
		if len(perTab) != 3 {
			t.Errorf("tabs: %v", perTab)
		}
		for pl, hs := range perTab {
			if len(hs) != 1 || hs[0] != e.URL+"/bitrix24/tab" {
				t.Errorf("%s shows %v, want one tab at %s", pl, hs, e.URL+"/bitrix24/tab")
			}
		}
		if rs := e.Portal.Robots(); len(rs) != 1 || rs[0].Handler != e.URL+"/bitrix24/robot" {
			t.Errorf("robot: %+v, want its handler at %s", rs, e.URL+"/bitrix24/robot")
		}
		if st, reason := integrationState(e); st != "active" {
			t.Errorf("state after a clean reinstall: %s (%s)", st, reason)
		}
	})
}

// With a public URL that does not reach the gateway, the install still
// works but the integration says, in the API, that replies cannot arrive
// and where the portal sends them (issue 6, item 1).
func TestBitrix24WrongPublicURLShowsInState(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wrong := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there
	opts := b24Opts
	opts.Config = func(c *config.Config) { c.PublicURL = wrong }
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		e.WaitIdle()
		st, reason := integrationState(e)
		if st != "handlers_mismatch" || !strings.Contains(reason, wrong+"/bitrix24/events") {
			t.Fatalf("state %q, reason %q: want handlers_mismatch naming %s", st, reason, wrong)
		}
		// The app page inside Bitrix24 says it too, in the portal's language.
		code, page := frame(t, e, "/bitrix24/app", e.B24.UserToken(apptest.B24MemberID, e.Portal.AdminUserID()), "DEFAULT", "{}")
		if code != http.StatusOK || !strings.Contains(page, "ответы операторов не доходят") || !strings.Contains(page, "Портал должен отправлять события на "+wrong+"/bitrix24/events") {
			t.Fatalf("app page: %d\n%s", code, page)
		}
		// Only in the page's language: the stored reason is English.
		if strings.Contains(page, "does not reach") || strings.Contains(page, "Bitrix24 must send") {
			t.Fatalf("English reason on a Russian page:\n%s", page)
		}
		// The portal is not parked: a line can be bound and customers'
		// messages still reach it, so operators at least see them.
		bindLine(t, e, integ, createWAIn(t, e, ws), "1")
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Здравствуйте"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("customer's message in the line", func() bool { return len(inboundOnLine(e, 1)) == 1 })
	})
}

// A portal in handlers_mismatch is set up again at start (the public URL
// may have been fixed), which rebinds what is missing and clears the
// state without a reinstall.
func TestBitrix24MismatchIsRecheckedAtStart(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, _ := e.InstallBitrix24()
		e.WaitIdle()
		if err := e.App.Bitrix24.Client().Call(context.Background(), integ, "event.unbind",
			map[string]any{"event": "OnImConnectorMessageAdd", "handler": e.URL + "/bitrix24/events"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.App.Store.SetIntegrationState(context.Background(), integ, "handlers_mismatch", "OnImConnectorMessageAdd: no handler"); err != nil {
			t.Fatal(err)
		}
		if n, err := e.App.Bitrix24.RecheckHandlers(context.Background()); err != nil || n != 1 {
			t.Fatalf("recheck: %d %v", n, err)
		}
		e.Eventually("state cleared", func() bool { st, _ := integrationState(e); return st == "active" })
		n := 0
		for _, b := range e.Portal.Events() {
			if strings.EqualFold(b.Event, "OnImConnectorMessageAdd") && b.Handler == e.URL+"/bitrix24/events" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("OnImConnectorMessageAdd bound %d times to us", n)
		}
	})
}

// The gateway restarted under another public URL, with no reinstall: the
// portal still sends events to the old address while its state says
// active. The check at start finds that and moves the handlers (found by a
// new-user trial: replies went to a closed port unseen).
func TestBitrix24HandlersFollowAChangedURLAtStart(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, _ := e.InstallBitrix24()
		e.WaitIdle()
		const old = "http://127.0.0.1:1/bitrix24/events"
		c := e.App.Bitrix24.Client()
		for _, ev := range []string{"OnImConnectorMessageAdd", "OnAppUninstall"} {
			if err := c.Call(context.Background(), integ, "event.unbind", map[string]any{"event": ev, "handler": e.URL + "/bitrix24/events"}, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Call(context.Background(), integ, "event.bind", map[string]any{"event": ev, "handler": old}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if st, _ := integrationState(e); st != "active" {
			t.Fatalf("state before the restart: %s", st)
		}
		if n, err := e.App.Bitrix24.RecheckHandlers(context.Background()); err != nil || n != 1 {
			t.Fatalf("recheck: %d %v", n, err)
		}
		e.Eventually("handlers moved to this gateway", func() bool {
			ours, stale := 0, 0
			for _, b := range e.Portal.Events() {
				if strings.EqualFold(b.Event, "OnImConnectorMessageAdd") && b.Handler == e.URL+"/bitrix24/events" {
					ours++
				}
				if b.Handler == old {
					stale++
				}
			}
			return ours == 1 && stale == 0
		})
		e.WaitIdle()
		if st, reason := integrationState(e); st != "active" {
			t.Fatalf("state after the recheck: %s (%s)", st, reason)
		}
	})
}
