package chatview

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/store"
)

// Live updates of the chat view, in every place that embeds it (the
// cabinet's shared chat, the Bitrix24 card tab, the amoCRM card window):
// Server-Sent Events telling a page which customers' conversations
// changed, so that it fetches its messages again (with the user's own
// rights: an event carries no content, only opaque contact ids of the
// workspace). A place proves who watches (its cookie session, a signed
// stream ticket) and says which workspace and, for a card, which
// customers; the hub and the stream writer here are the same for all.
//
// Several gateway instances share one database, and a message may be
// stored or its status changed by any of them, so an in-process broadcast
// is not enough. Each instance, while someone watches, asks the database
// what changed since its cursor (messages.updated_at): one query per
// interval per instance however many browsers are open, fanned out in
// process by workspace. Clocks of instances may differ a little, so each
// poll reaches back chatOverlap before the cursor and skips what it has
// already told; an event more than that late is still caught by the page's
// next refresh.

const (
	// chatPollEvery is the interval of the database poll.
	chatPollEvery = 500 * time.Millisecond
	// chatOverlap is how far back each poll reaches, for instances whose
	// clocks run a little behind.
	chatOverlap = 2 * time.Second
	// chatPollLimit bounds one poll; what is left comes with the next.
	chatPollLimit = 2000
	// chatHeartbeat keeps proxies from closing an idle stream and lets a
	// closed one be noticed.
	chatHeartbeat = 15 * time.Second
	// chatStreamMax ends a stream after a while; the browser reconnects
	// with Last-Event-ID, so a long-lived connection never outlives a
	// signed-out session by much.
	chatStreamMax = 5 * time.Minute
	// chatMaxContacts is how many changed customers one event names; more
	// become "everything changed".
	chatMaxContacts = 100
)

// chatHub polls the database for changes and hands them to the
// subscribers of each workspace.
type chatHub struct {
	store *store.Store
	log   *slog.Logger
	every time.Duration

	// closed ends every stream: the server shuts down.
	closed    chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	subs    map[string]map[*chatSub]bool // workspace id → subscribers
	running bool
	cursor  time.Time
	// told are the changes within the overlap already told, by message id
	// and change time.
	told map[string]time.Time
}

// chatSub is one open stream. Changes pile up in it until the stream
// writes them: a page that falls behind gets one event naming them all,
// not a queue.
type chatSub struct {
	ws string
	// only are the customers a card page shows (nil: the whole
	// workspace, for the cabinet): nothing about anyone else reaches it.
	only     map[string]bool
	mu       sync.Mutex
	contacts map[string]bool
	all      bool
	id       int64
	wake     chan struct{}
}

func newChatHub(st *store.Store, log *slog.Logger) *chatHub {
	if log == nil {
		log = slog.Default()
	}
	return &chatHub{store: st, log: log, every: chatPollEvery, subs: map[string]map[*chatSub]bool{}, told: map[string]time.Time{},
		closed: make(chan struct{})}
}

// CloseStreams ends the chat view's event streams (the browsers reconnect
// to another instance, or to this one when it is back): a graceful
// shutdown waits for every request, and a stream does not end by itself
// for minutes.
func (s *Service) CloseStreams() {
	s.hub.closeOnce.Do(func() { close(s.hub.closed) })
}

// subscribe adds a stream of workspace ws (of only its customers in only,
// when not nil); the poll starts with the first one. lastID is the Last-Event-ID the browser reconnected with (0:
// none): when changes came since, the stream starts with "everything
// changed", since the hub keeps no history to replay.
func (h *chatHub) subscribe(ws string, only []string, lastID int64) *chatSub {
	sub := &chatSub{ws: ws, contacts: map[string]bool{}, wake: make(chan struct{}, 1)}
	if only != nil {
		sub.only = map[string]bool{}
		for _, c := range only {
			sub.only[c] = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		h.running, h.cursor = true, store.Now()
		h.told = map[string]time.Time{}
		go h.run()
	}
	if lastID > 0 && lastID < h.cursor.UnixMicro() {
		sub.add(nil, true, h.cursor.UnixMicro())
	}
	if h.subs[ws] == nil {
		h.subs[ws] = map[*chatSub]bool{}
	}
	h.subs[ws][sub] = true
	return sub
}

func (h *chatHub) unsubscribe(sub *chatSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[sub.ws], sub)
	if len(h.subs[sub.ws]) == 0 {
		delete(h.subs, sub.ws)
	}
}

// run polls while anyone watches.
func (h *chatHub) run() {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for range t.C {
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		since := h.cursor.Add(-chatOverlap)
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		changes, err := h.store.MessagesChangedSince(ctx, since, chatPollLimit)
		cancel()
		if err != nil {
			// The next tick tries again from the same cursor.
			h.log.Error("chat view: poll for changes", "err", err)
			continue
		}
		h.deliver(changes)
	}
}

// deliver tells each workspace's streams which customers changed.
func (h *chatHub) deliver(changes []store.MessageChange) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byWS := map[string][]string{}
	for _, ch := range changes {
		if at, ok := h.told[ch.ID]; ok && !ch.UpdatedAt.After(at) {
			continue
		}
		h.told[ch.ID] = ch.UpdatedAt
		byWS[ch.WorkspaceID] = append(byWS[ch.WorkspaceID], ch.ContactID)
		if ch.UpdatedAt.After(h.cursor) {
			h.cursor = ch.UpdatedAt
		}
	}
	for id, at := range h.told {
		if at.Before(h.cursor.Add(-chatOverlap)) {
			delete(h.told, id)
		}
	}
	id := h.cursor.UnixMicro()
	for ws, contacts := range byWS {
		for sub := range h.subs[ws] {
			sub.add(contacts, false, id)
		}
	}
}

// add piles changes up in the stream and wakes it. A card's stream
// keeps only its own customers, and "everything changed" names them
// instead: it never learns that anyone else's conversation moved.
func (s *chatSub) add(contacts []string, all bool, id int64) {
	s.mu.Lock()
	if s.only != nil {
		if all {
			contacts, all = nil, false
			for c := range s.only {
				contacts = append(contacts, c)
			}
		}
		kept := contacts[:0:0]
		for _, c := range contacts {
			if s.only[c] {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			s.mu.Unlock()
			return
		}
		contacts = kept
	}
	for _, c := range contacts {
		s.contacts[c] = true
	}
	s.all = s.all || all || len(s.contacts) > chatMaxContacts
	s.id = id
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// chatEvent is what one event says.
type chatEvent struct {
	All      bool     `json:"all"`
	Contacts []string `json:"contacts"`
}

// take empties the stream's pile.
func (s *chatSub) take() (chatEvent, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := chatEvent{All: s.all, Contacts: make([]string, 0, len(s.contacts))}
	if !s.all {
		for c := range s.contacts {
			ev.Contacts = append(ev.Contacts, c)
		}
	}
	s.contacts, s.all = map[string]bool{}, false
	return ev, s.id
}

// ServeStream writes the event stream of workspace ws to w until the
// client goes, the stream's time is up, or the server closes the streams.
// only are the customers a card page shows (nil: the whole workspace, for
// the cabinet's list). The caller has authenticated the request and
// decided ws and only; the Last-Event-ID header resumes a stream.
func (s *Service) ServeStream(w http.ResponseWriter, r *http.Request, ws string, only []string) {
	last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64) // a bad one counts as none
	sub := s.hub.subscribe(ws, only, last)
	defer s.hub.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The body deadline every request gets would end the stream: when it
	// passes, the server's read of the idle connection fails and cancels
	// the request. A GET has no body; the stream's own limit bounds it.
	if err := rc.SetReadDeadline(time.Now().Add(chatStreamMax + time.Minute)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.cfg.Log.Debug("chat view: could not move the read deadline", "err", err)
	}
	write := func(b []byte) bool {
		// The server's write timeout is for ordinary answers; a stream
		// moves its deadline forward with each write.
		if err := rc.SetWriteDeadline(time.Now().Add(2 * chatHeartbeat)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n: hello\n\n")) {
		return
	}
	beat := time.NewTicker(chatHeartbeat)
	defer beat.Stop()
	end := time.NewTimer(chatStreamMax)
	defer end.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-s.hub.closed:
			return
		case <-beat.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		case <-sub.wake:
			ev, id := sub.take()
			data, err := json.Marshal(ev)
			if err != nil {
				s.cfg.Log.Error("chat view: event", "err", err)
				return
			}
			if !write([]byte("id: " + strconv.FormatInt(id, 10) + "\nevent: change\ndata: " + string(data) + "\n\n")) {
				return
			}
		}
	}
}

// Live gives a CRM page its live updates: a stream ticket for the
// customers it shows, signed with the provider's page sessions, in the
// address of the provider's stream (base + "/events"), and where the page
// posts its session for its messages again (base + "/log").
func (p *Page) Live(sessions *crm.Sessions, ss *crm.Session, in *store.Integration, base string) {
	t := sessions.SignStream(ss, crm.StreamTicket{IntegrationID: in.ID, WorkspaceID: in.WorkspaceID, Contacts: p.Watch})
	p.Stream = base + "/events?" + url.Values{"t": {t}}.Encode()
	p.Refresh = base + "/log"
}

// ServeTicketStream is a CRM page's event stream: GET with the ticket Live
// signed (?t=), of an integration of type typ that is still installed in
// the ticket's workspace. It tells only about the customers the ticket
// names, which the page showed its user. A bad or old ticket is a 401:
// the page gets a new one with its next refresh.
func (s *Service) ServeTicketStream(w http.ResponseWriter, r *http.Request, sessions *crm.Sessions, typ string) {
	t, err := sessions.OpenStream(r.URL.Query().Get("t"))
	if err != nil {
		http.Error(w, "stream ticket invalid or expired", http.StatusUnauthorized)
		return
	}
	in, err := s.cfg.Store.GetIntegration(r.Context(), store.All, t.IntegrationID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (in.Type != typ || in.WorkspaceID != t.WorkspaceID || in.State == store.IntegrationUninstalled)) {
		http.Error(w, "stream ticket invalid or expired", http.StatusUnauthorized)
		return
	}
	if err != nil {
		s.cfg.Log.Error("chat view: stream's integration", "integration_id", t.IntegrationID, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	only := t.Contacts
	if only == nil {
		// A ticket naming nobody tells about nobody, not everybody.
		only = []string{}
	}
	s.ServeStream(w, r, t.WorkspaceID, only)
}
