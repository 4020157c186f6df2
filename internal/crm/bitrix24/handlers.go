package bitrix24

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/netguard"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// boundEvent is one row of event.get: the app's own bindings. Offline
// bindings have no handler.
type boundEvent struct {
	Event   string `json:"event"`
	Handler string `json:"handler"`
}

// boundPlacement is one row of placement.get: the app's own widgets.
type boundPlacement struct {
	Placement string `json:"placement"`
	Handler   string `json:"handler"`
}

// portalBindings is what the portal has bound for this app.
type portalBindings struct {
	events     []boundEvent
	placements []boundPlacement
	// noPlacements: placement.get failed (e.g. a portal whose app card
	// lacks the placement scope); tabs are then neither unbound nor
	// checked, while events, which replies depend on, still are.
	noPlacements bool
}

// readBindings asks the portal what it has bound for this app, in one
// batch (event.get and placement.get list only the calling app's own).
func (s *Service) readBindings(ctx context.Context, integrationID string) (*portalBindings, error) {
	res, err := s.client.Batch(ctx, integrationID, []BatchCommand{
		{Name: "events", Method: "event.get", Params: map[string]any{}},
		{Name: "placements", Method: "placement.get", Params: map[string]any{}},
	}, false)
	if err != nil {
		return nil, err
	}
	var out portalBindings
	if err := res.Decode("events", &out.events); err != nil {
		return nil, err
	}
	if err := res.Decode("placements", &out.placements); err != nil {
		s.log.Warn("bitrix24: placement.get failed; card tabs are not checked", "integration_id", integrationID, "err", err)
		out.placements, out.noPlacements = nil, true
	}
	return &out, nil
}

// eventsURL and tabURL are where the portal must call us.
func (s *Service) eventsURL() string { return s.url("/bitrix24/events") }
func (s *Service) tabURL() string    { return s.url("/bitrix24/tab") }

// ours says whether an event binding is one setup manages: one of
// boundEvents, or anything else pointed at an events handler (an older
// version's binding).
func ours(b boundEvent) bool {
	if b.Handler == "" {
		return false // offline bindings are not ours to touch
	}
	return isBoundEvent(b.Event) || strings.HasSuffix(strings.TrimRight(b.Handler, "/"), "/bitrix24/events")
}

func isBoundEvent(name string) bool {
	return slices.ContainsFunc(boundEvents, func(e string) bool { return strings.EqualFold(e, name) })
}

// hasEvent and hasTab report whether the expected binding is there.
func (p *portalBindings) hasEvent(event, handler string) bool {
	return slices.ContainsFunc(p.events, func(b boundEvent) bool { return strings.EqualFold(b.Event, event) && b.Handler == handler })
}

func (p *portalBindings) hasTab(placement, handler string) bool {
	return slices.ContainsFunc(p.placements, func(b boundPlacement) bool {
		return strings.EqualFold(b.Placement, placement) && b.Handler == handler
	})
}

// staleCommands unbinds what is ours and points anywhere but where it
// must: event handlers and card tabs left by an install with another
// public URL, which Bitrix24 keeps beside the new ones and calls too.
func (s *Service) staleCommands(p *portalBindings) []BatchCommand {
	var cmds []BatchCommand
	for i, b := range p.events {
		if ours(b) && b.Handler != s.eventsURL() {
			cmds = append(cmds, BatchCommand{Name: fmt.Sprintf("unbind_event_%d", i), Method: "event.unbind",
				Params: map[string]any{"event": b.Event, "handler": b.Handler}})
		}
	}
	for i, b := range p.placements { // none when placement.get failed
		if _, tab := tabPlacements[strings.ToUpper(b.Placement)]; tab && b.Handler != s.tabURL() {
			cmds = append(cmds, BatchCommand{Name: fmt.Sprintf("unbind_tab_%d", i), Method: "placement.unbind",
				Params: map[string]any{"PLACEMENT": b.Placement, "HANDLER": b.Handler}})
		}
	}
	return cmds
}

// mismatch compares what the portal has with what it must have and says
// what differs, or "" when every event has exactly our handler and every
// card tab exactly our page.
func (s *Service) mismatch(p *portalBindings) string {
	want := s.eventsURL()
	var problems []string
	for _, ev := range boundEvents {
		var got []string
		for _, b := range p.events {
			if strings.EqualFold(b.Event, ev) && b.Handler != "" {
				got = append(got, b.Handler)
			}
		}
		switch {
		case len(got) == 0:
			problems = append(problems, ev+": no handler")
		case len(got) > 1 || got[0] != want:
			problems = append(problems, ev+": "+strings.Join(got, ", "))
		}
	}
	for _, placement := range slices.Sorted(maps.Keys(tabPlacements)) {
		if p.noPlacements {
			break
		}
		var got []string
		for _, b := range p.placements {
			if strings.EqualFold(b.Placement, placement) {
				got = append(got, b.Handler)
			}
		}
		if len(got) != 1 || got[0] != s.tabURL() {
			problems = append(problems, placement+": "+cmp.Or(strings.Join(got, ", "), "none"))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("Bitrix24 must send this app's events to %s, but the portal has %s", want, strings.Join(problems, "; "))
}

// verifyHandlers reads the portal's bindings back after setup and probes
// our own events URL; any difference puts the integration into
// handlers_mismatch with the reason, and a clean read-back clears it.
//
// Such a portal keeps working (routing treats the state as workable):
// customers' messages still reach its Open Lines, and parking them too
// would hide the customers from operators as well; only operators'
// replies cannot arrive, and the state says so where the admin looks.
//
// The state is set in the commit that ends the setup job j.
func (s *Service) verifyHandlers(ctx context.Context, in *store.Integration, j *queue.Job) error {
	p, err := s.readBindings(ctx, in.ID)
	if err != nil {
		return s.classify(err)
	}
	reason := s.mismatch(p)
	if reason == "" {
		reason = s.probeReason(ctx)
	}
	switch {
	case reason != "":
		s.log.Warn("bitrix24 portal's handlers do not reach this gateway", "integration_id", in.ID, "domain", in.Domain, "reason", reason)
		return queue.Finish(ctx, s.store, j, func(st *store.Store) error {
			return st.SetIntegrationState(ctx, in.ID, store.IntegrationHandlersMismatch, reason)
		})
	case in.State == store.IntegrationHandlersMismatch:
		return queue.Finish(ctx, s.store, j, func(st *store.Store) error {
			return st.SetIntegrationState(ctx, in.ID, store.IntegrationActive, "")
		})
	}
	return nil
}

// probeField carries a probe's nonce to our own events handler.
const probeField = "switchboard_probe"

// probeReason posts a nonce to our own events URL, the way Bitrix24
// would reach it, and checks that a gateway sharing our keys answered: a
// public URL pointing at another port or host would bind every handler to
// a place no reply ever arrives at. It returns "" when the probe came
// back, or why the URL does not reach us.
func (s *Service) probeReason(ctx context.Context) string {
	target := s.eventsURL()
	nonce := rand.Text()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(url.Values{probeField: {nonce}}.Encode()))
	if err != nil {
		return fmt.Sprintf("the events URL %s is not a valid URL (check SWITCHBOARD_PUBLIC_URL)", target)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.http.Do(req)
	if errors.Is(err, netguard.ErrPrivateAddress) {
		return fmt.Sprintf("the events URL %s is a loopback or private address, which Bitrix24's servers cannot reach (check SWITCHBOARD_PUBLIC_URL)", target)
	}
	if err != nil {
		s.log.Warn("bitrix24: probe of our own events URL failed", "url", target, "err", err)
		return fmt.Sprintf("the events URL %s does not reach this gateway (check SWITCHBOARD_PUBLIC_URL)", target)
	}
	defer resp.Body.Close()
	var body struct {
		Probe string `json:"probe"`
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(data, &body) != nil ||
		!hmac.Equal([]byte(body.Probe), []byte(s.probeSignature(nonce))) {
		return fmt.Sprintf("the events URL %s answers, but not as this gateway (HTTP %d; check SWITCHBOARD_PUBLIC_URL)", target, resp.StatusCode)
	}
	return ""
}

// probeSignature proves an answer came from a gateway holding our keys.
// The key is derived for this use only, so answering probes signs nothing
// a page session would accept.
func (s *Service) probeSignature(nonce string) string {
	k := hmac.New(sha256.New, s.cfg.SessionKey)
	k.Write([]byte("bitrix24 events probe"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(nonce))
	return hex.EncodeToString(m.Sum(nil))
}

// answerProbe answers a probe posted to the events handler.
func (s *Service) answerProbe(w http.ResponseWriter, nonce string) {
	if len(nonce) > 64 {
		writeError(w, fault.New(fault.Malformed, "probe_invalid", "the probe is too long"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(map[string]string{"probe": s.probeSignature(nonce)}); err != nil {
		s.log.Debug("bitrix24: probe answer not written", "err", err)
	}
}

// RecheckHandlers queues a check of every working portal's bindings, and
// setup where they differ. Run at start: when SWITCHBOARD_PUBLIC_URL was
// changed or fixed, the portals' handlers follow it (bound to the new
// URL, the stale ones unbound, a handlers_mismatch state cleared) with no
// reinstall; otherwise replies would go to the old address unseen. It
// returns how many portals it queued.
func (s *Service) RecheckHandlers(ctx context.Context) (int, error) {
	ins, err := s.store.ListIntegrations(ctx, store.All)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range ins {
		in := &ins[i]
		if in.Type != Type || (in.State != store.IntegrationHandlersMismatch && in.State != store.IntegrationActive) {
			continue
		}
		if err := s.enqueueSetup(ctx, in, in.State == store.IntegrationActive); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		s.msg.Notify()
	}
	return n, nil
}
