// Package console is the Bitrix24 simulator's page for people: each Open
// Line's transcript with an operator's answer box, the install button, and
// the app opened as a portal user would. cmd/b24sim and the demo
// (switchboard demo) serve it.
package console

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/switchboard/switchboard/internal/sandbox/simhttp"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// Config names the portal the console shows.
type Config struct {
	MemberID string
	Domain   string
	// InstallURL is where the install button posts ONAPPINSTALL (the
	// gateway's /bitrix24/install); AppURL the app's page opened as a
	// portal user.
	InstallURL string
	AppURL     string
	Lines      []b24sim.OpenLine
	// TimeZone is the portal's (IANA name): Bitrix24 shows chat times in
	// it, not in the browser's. Empty means Europe/Moscow.
	TimeZone string
}

// Handler serves the console at /sim/ (the page, the operator's answer,
// the install button, the transcripts, opening the app as a portal user)
// and the simulator at every other path.
func Handler(sim *b24sim.Server, cfg Config, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	c := &control{sim: sim, cfg: cfg, log: logger}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sim/", http.StatusFound)
	})
	mux.HandleFunc("GET /sim", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sim/", http.StatusFound)
	})
	mux.HandleFunc("GET /sim/{$}", c.page)
	mux.HandleFunc("POST /sim/operator-reply", c.operatorReply)
	mux.HandleFunc("POST /sim/install", c.install)
	mux.HandleFunc("GET /sim/lines", c.lines)
	mux.HandleFunc("GET /sim/deliveries", c.deliveries)
	mux.HandleFunc("POST /sim/open", c.open)
	// Everything else is the OAuth server, portal REST or file links.
	mux.Handle("/", sim)
	return mux
}

type control struct {
	sim *b24sim.Server
	cfg Config
	log *slog.Logger
}

// flexString accepts a JSON string or number, since a line id is a number
// to people and a string in Bitrix24 events.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want string or number, got %s", b)
	}
	*f = flexString(n.String())
	return nil
}

// replyResult reports the operator message. A gateway that rejects the
// event still gets 200 here with the error spelled out, because the
// operator did write; only bad input is a 4xx.
type replyResult struct {
	MessageID string `json:"message_id"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

func (c *control) operatorReply(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Line flexString `json:"line"`
		Chat flexString `json:"chat"`
		Text string     `json:"text"`
	}
	if !simhttp.DecodeJSON(w, r, &in) {
		return
	}
	if in.Line == "" && len(c.cfg.Lines) == 1 {
		in.Line = flexString(strconv.Itoa(c.cfg.Lines[0].ID))
	}
	if in.Line == "" || in.Chat == "" || strings.TrimSpace(in.Text) == "" {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "line, chat and text are required"})
		return
	}
	id, err := c.sim.OperatorReply(r.Context(), c.cfg.MemberID, string(in.Line), string(in.Chat), in.Text)
	if id == "" {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	res := replyResult{MessageID: id, Delivered: err == nil}
	if err != nil {
		res.Error = err.Error()
	}
	simhttp.WriteJSON(w, http.StatusOK, res)
}

func (c *control) install(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL  string `json:"url"`
		Lang string `json:"lang"`
	}
	if !simhttp.DecodeJSON(w, r, &in) {
		return
	}
	if in.URL == "" {
		in.URL = c.cfg.InstallURL
	}
	if !strings.HasPrefix(in.URL, "http://") && !strings.HasPrefix(in.URL, "https://") {
		simhttp.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "url must be an http(s) URL"})
		return
	}
	status, err := c.sim.PostInstallEvent(r.Context(), c.cfg.MemberID, in.URL, in.Lang)
	res := map[string]any{"status": status}
	if err != nil {
		res["error"] = err.Error()
	}
	simhttp.WriteJSON(w, http.StatusOK, res)
}

// Views for /sim/lines: what an operator would see, without tokens.

type fileView struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// MessageView is a transcript entry as GET /sim/lines shows it.
type MessageView struct {
	Time time.Time `json:"time"`
	// Direction is in, out (an operator's answer) or system (the app's
	// system message in the dialog's chat).
	Direction   string     `json:"direction"`
	Connector   string     `json:"connector"`
	ChatID      string     `json:"chat"`
	Author      string     `json:"author"`
	Text        string     `json:"text"`
	Files       []fileView `json:"files,omitempty"`
	ExternalID  string     `json:"external_id,omitempty"`
	IMChatID    string     `json:"im_chat_id"`
	IMMessageID string     `json:"im_message_id"`
	SessionID   string     `json:"session_id"`
	Edited      bool       `json:"edited,omitempty"`
	Deleted     bool       `json:"deleted,omitempty"`
	Delivered   bool       `json:"delivered,omitempty"`
	Read        bool       `json:"read,omitempty"`
}

// DialogView is an Open Lines dialog as GET /sim/lines shows it.
type DialogView struct {
	Connector string `json:"connector"`
	ChatID    string `json:"chat"`
	UserID    string `json:"user"`
	Name      string `json:"name"`
	IMChatID  string `json:"im_chat_id"`
	SessionID string `json:"session_id"`
	Closed    bool   `json:"closed"`
}

// LineView is an Open Line with its dialogs and transcript (GET /sim/lines).
type LineView struct {
	ID       int           `json:"id"`
	Name     string        `json:"name"`
	Active   bool          `json:"active"`
	Dialogs  []DialogView  `json:"dialogs"`
	Messages []MessageView `json:"messages"`
}

func (c *control) lineViews() []LineView {
	p := c.sim.Portal(c.cfg.MemberID)
	var out []LineView
	for _, l := range p.Lines() {
		v := LineView{ID: l.ID(), Name: l.Name(), Active: l.Active(), Dialogs: []DialogView{}, Messages: []MessageView{}}
		chats := map[string]b24sim.Dialog{} // "chat<im chat id>" → dialog
		for _, d := range l.Dialogs() {
			v.Dialogs = append(v.Dialogs, DialogView{Connector: d.Connector, ChatID: d.ChatID, UserID: d.UserID, Name: d.ChatName, IMChatID: d.IMChatID, SessionID: d.SessionID, Closed: d.Closed})
			chats["chat"+d.IMChatID] = d
		}
		for _, m := range l.Messages() {
			mv := MessageView{
				Time: m.Time, Direction: string(m.Direction), Connector: m.Connector, ChatID: m.ChatID, Text: m.Text,
				ExternalID: m.ExternalID, IMChatID: m.IMChatID, IMMessageID: m.IMMessageID, SessionID: m.SessionID,
				Edited: m.Edits > 0, Deleted: m.Deleted, Delivered: m.Delivered, Read: m.Read,
			}
			if m.Direction == b24sim.Inbound {
				mv.Author = strings.TrimSpace(m.User.Name + " " + m.User.LastName)
				if mv.Author == "" {
					mv.Author = m.User.ID
				}
			} else {
				mv.Author = "operator #" + strconv.Itoa(m.OperatorID)
			}
			for _, f := range m.Files {
				u := f.URL // inbound: the connector's URL
				if u == "" {
					u = f.Link // outbound: served by the simulator
				}
				mv.Files = append(mv.Files, fileView{Name: f.Name, URL: u})
			}
			v.Messages = append(v.Messages, mv)
		}
		// The app's system messages in the dialogs' chats (im.message.add
		// SYSTEM=Y: what was told the customer elsewhere, notices) are
		// part of what the line's operators read, in time order.
		for _, m := range p.ChatMessages() {
			d, ok := chats[m.DialogID]
			if !ok || !m.System {
				continue
			}
			v.Messages = append(v.Messages, MessageView{Time: m.Time, Direction: "system", Connector: d.Connector, ChatID: d.ChatID,
				Author: "system / система", Text: m.Message, IMChatID: d.IMChatID, IMMessageID: "sys" + strconv.Itoa(m.ID)})
		}
		slices.SortStableFunc(v.Messages, func(a, b MessageView) int { return a.Time.Compare(b.Time) })
		out = append(out, v)
	}
	return out
}

func (c *control) lines(w http.ResponseWriter, r *http.Request) {
	simhttp.WriteJSON(w, http.StatusOK, c.lineViews())
}

type deliveryView struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	Handler string    `json:"handler"`
	Status  int       `json:"status"`
	Error   string    `json:"error,omitempty"`
}

func (c *control) deliveries(w http.ResponseWriter, r *http.Request) {
	ds := c.sim.Deliveries()
	out := make([]deliveryView, 0, len(ds))
	for _, d := range ds {
		// Bodies carry access tokens; show only what happened.
		out = append(out, deliveryView{Time: d.Time, Event: d.Event, Handler: d.Handler, Status: d.Status, Error: d.Err})
	}
	simhttp.WriteJSON(w, http.StatusOK, out)
}

// open answers with a page that posts to one of the app's iframes from
// this browser, as Bitrix24's page does when a user opens the app
// (placement DEFAULT) or a CRM card's tab (CRM_DEAL_DETAIL_TAB...). A card
// tab goes to the handler the app bound with placement.bind.
func (c *control) open(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form / неверная форма: "+err.Error(), http.StatusBadRequest)
		return
	}
	placement := r.PostForm.Get("placement")
	user, err := strconv.Atoi(cmp.Or(r.PostForm.Get("user"), "0"))
	if err != nil {
		http.Error(w, "user must be a number / номер пользователя — число", http.StatusBadRequest)
		return
	}
	var handler string
	var options map[string]any
	if placement == "DEFAULT" {
		handler = cmp.Or(strings.TrimSpace(r.PostForm.Get("handler")), c.cfg.AppURL)
		if !strings.HasPrefix(handler, "http://") && !strings.HasPrefix(handler, "https://") {
			http.Error(w, "the app URL must be http(s) / адрес приложения должен быть http(s)", http.StatusBadRequest)
			return
		}
	} else {
		options = map[string]any{"ID": strings.TrimSpace(r.PostForm.Get("id"))}
	}
	req, err := c.sim.PlacementRequest(c.cfg.MemberID, user, placement, handler, options, r.PostForm.Get("lang"))
	if errors.Is(err, b24sim.ErrPlacementNotBound) {
		http.Error(w, "The app has not bound this card tab yet: install it first. / Приложение ещё не добавило эту вкладку: сначала установите его.", http.StatusConflict)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	page, err := req.AutoSubmitHTML()
	if err != nil {
		c.log.Error("render open page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// It carries a live access token of the user.
	w.Header().Set("Cache-Control", "no-store")
	if _, err := w.Write(page); err != nil {
		c.log.Warn("write open page", "err", err)
	}
}

// pageUser is a portal user the page can open the app as.
type pageUser struct {
	ID    int
	Name  string
	Admin bool
}

func (c *control) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	p := c.sim.Portal(c.cfg.MemberID)
	users := []pageUser{{ID: p.AdminUserID(), Name: "admin / администратор", Admin: true}}
	if op := p.OperatorUserID(); op != p.AdminUserID() {
		users = append(users, pageUser{ID: op, Name: "manager / менеджер"})
	}
	deal := ""
	if ds := p.Deals(); len(ds) > 0 {
		deal = ds[len(ds)-1].Field("ID")
	}
	err := pageTmpl.Execute(w, map[string]any{
		"MemberID":   c.cfg.MemberID,
		"Domain":     c.cfg.Domain,
		"InstallURL": c.cfg.InstallURL,
		"AppURL":     c.cfg.AppURL,
		"Users":      users,
		"DealID":     deal,
		"TimeZone":   cmp.Or(c.cfg.TimeZone, "Europe/Moscow"),
	})
	if err != nil {
		c.log.Error("render page", "err", err)
	}
}
