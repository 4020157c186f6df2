package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/store"
)

// The shared chat's live updates: Server-Sent Events telling a page which
// customers' conversations changed, so that it fetches the list and the
// open dialog again (with the user's own rights: an event carries no
// content, only opaque contact ids of the workspace).
//
// Several gateway instances share one database, and a message may be
// stored or its status changed by any of them, so an in-process broadcast
// is not enough. Each instance, while someone watches, asks the database
// what changed since its cursor (messages.updated_at): one query per
// interval per instance however many browsers are open, fanned out in
// process by workspace. Clocks of instances may differ a little, so each
// poll reaches back chatOverlap before the cursor and skips what it has
// already told; an event more than that late is still caught by the page's
// next refresh of the list.

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
	ws       string
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

// CloseStreams ends the shared chat's event streams (the browsers
// reconnect to another instance, or to this one when it is back): a
// graceful shutdown waits for every request, and a stream does not end by
// itself for minutes.
func (s *Server) CloseStreams() {
	s.chat.closeOnce.Do(func() { close(s.chat.closed) })
}

// subscribe adds a stream of workspace ws; the poll starts with the first
// one. lastID is the Last-Event-ID the browser reconnected with (0:
// none): when changes came since, the stream starts with "everything
// changed", since the hub keeps no history to replay.
func (h *chatHub) subscribe(ws string, lastID int64) *chatSub {
	sub := &chatSub{ws: ws, contacts: map[string]bool{}, wake: make(chan struct{}, 1)}
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
			h.log.Error("shared chat: poll for changes", "err", err)
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

// add piles changes up in the stream and wakes it.
func (s *chatSub) add(contacts []string, all bool, id int64) {
	s.mu.Lock()
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

// chatEvents is the stream of the signed-in user's workspace.
func (s *Server) chatEvents(c *gin.Context) {
	cc := cabinetOf(c)
	last, _ := strconv.ParseInt(c.GetHeader("Last-Event-ID"), 10, 64) // a bad one counts as none
	sub := s.chat.subscribe(cc.Workspace.ID, last)
	defer s.chat.unsubscribe(sub)
	w := c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	rc := http.NewResponseController(w)
	// The body deadline every request gets would end the stream: when it
	// passes, the server's read of the idle connection fails and cancels
	// the request. A GET has no body; the stream's own limit bounds it.
	if err := rc.SetReadDeadline(time.Now().Add(chatStreamMax + time.Minute)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.d.Log.Debug("shared chat: could not move the read deadline", "err", err)
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
		case <-c.Request.Context().Done():
			return
		case <-end.C:
			return
		case <-s.chat.closed:
			return
		case <-beat.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		case <-sub.wake:
			ev, id := sub.take()
			data, err := json.Marshal(ev)
			if err != nil {
				s.d.Log.Error("shared chat: event", "err", err)
				return
			}
			if !write([]byte("id: " + strconv.FormatInt(id, 10) + "\nevent: change\ndata: " + string(data) + "\n\n")) {
				return
			}
		}
	}
}
