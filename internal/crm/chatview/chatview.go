// Package chatview is the conversation with a CRM record's customers as a
// page shows it inside a CRM (the Bitrix24 card tab, the amoCRM card
// window), and the send box under it. It is the neutral half of those
// pages: a provider keeps only how its page is authenticated, how a
// record maps to customers, and what happens when a message is stored
// (its Send hook); everything else — the merged history, the targets with
// their 24-hour window, the access matrix and visibility, the template
// picker, files — is decided here, once.
//
// It knows the store, routing's access rules, messaging's send request and
// the stored message templates; it names no CRM.
package chatview

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/messaging"
	phonenum "github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/templates"
)

// DefaultUploadMaxBytes is the file limit of a chat view built without
// one: WhatsApp's largest file (a 100 MB document) is more than a page
// should take, so the gateway's usual 50 MB.
const DefaultUploadMaxBytes = 50 << 20

// HistoryLimit is how many of each customer's latest messages a page shows.
const HistoryLimit = 100

// Config is what the chat view reads and how large a file may be.
type Config struct {
	Store     *store.Store
	Templates *templates.Service
	// FileURL gives a stored media file's signed link; nil leaves files
	// without links.
	FileURL func(mediaID string) string
	// UploadMaxBytes caps a file sent from the page (the gateway's
	// upload limit).
	UploadMaxBytes int64
	// KeptFile reads a quick reply's stored file (at most limit bytes);
	// nil sends quick replies without their files.
	KeptFile func(ctx context.Context, key string, limit int64) ([]byte, error)
	Log      *slog.Logger
}

// QuickFileMax caps a quick reply's file: what WhatsApp takes as a
// document, within the gateway's upload limit.
const QuickFileMax = 16 << 20

// Service builds chat pages and handles their sends.
type Service struct {
	cfg Config
	// hub tells the pages' event streams what changed (live.go).
	hub *chatHub
}

// New builds the chat view.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg, hub: newChatHub(cfg.Store, cfg.Log)}
}

// UploadMaxBytes is the largest file a page may send.
func (s *Service) UploadMaxBytes() int64 { return s.cfg.UploadMaxBytes }

// Record is a CRM record as its provider resolved it for the page's user,
// or a customer of a channel bound to no CRM (Integration nil).
type Record struct {
	// Integration is the CRM whose record it is. nil is a conversation of
	// a channel bound to no CRM: no CRM user's rights apply to it, so the
	// place that shows it (the cabinet) decides who sees it, and whoever
	// sees it may write.
	Integration *store.Integration
	// WorkspaceID is the record's workspace when Integration is nil.
	WorkspaceID string
	// Session is the page's user (their CRM id and admin flag).
	Session *crm.Session
	// Lang is the language the page is shown in ("ru" or "en").
	Lang string
	// Phones are the record's own numbers (E.164): every active WhatsApp
	// channel may write to them, customer or not yet.
	Phones []string
	// Contacts are our customers behind the record (see Customers).
	Contacts []store.Contact
	// ChannelNames are the channels' names in this CRM (a binding's own
	// name), by channel id; a channel without one keeps its own name.
	ChannelNames map[string]string
	// RightsBy says who sets the access rights and where, in Lang, for
	// the read-only notice ("" says Switchboard's admin).
	RightsBy string
}

// workspace is the record's workspace.
func (r *Record) workspace() string {
	if r.Integration != nil {
		return r.Integration.WorkspaceID
	}
	return r.WorkspaceID
}

// integrationID is the record's integration for the logs ("" for none).
func (r *Record) integrationID() string {
	if r.Integration != nil {
		return r.Integration.ID
	}
	return ""
}

// SendFunc stores and queues a message the page's user wrote, running the
// provider's own hooks in the accepting transaction (req.OnStored is the
// provider's to set).
type SendFunc func(ctx context.Context, channelID string, req messaging.SendRequest) (*store.Message, error)

// Customers finds our customers behind a CRM record: the workspace's
// contacts with one of the record's numbers, and the contacts the
// provider's links name (linked: store contact ids). A customer of another
// branch of a shared channel is not the integration's to see. A failed
// lookup shows fewer customers (and allows fewer recipients); it is logged
// rather than failing the page.
func (s *Service) Customers(ctx context.Context, in *store.Integration, phones, linked []string) []store.Contact {
	logErr := func(err error) {
		if err != nil {
			s.cfg.Log.Error("chat view: customers of a record", "integration_id", in.ID, "err", err)
		}
	}
	var out []store.Contact
	if len(phones) > 0 {
		digits := make([]string, len(phones))
		for i, p := range phones {
			digits[i] = phonenum.Digits(p)
		}
		found, err := s.cfg.Store.ContactsByExternalIDs(ctx, in.WorkspaceID, digits)
		logErr(err)
		out = found
	}
	if len(linked) > 0 {
		more, err := s.cfg.Store.ContactsByIDs(ctx, in.WorkspaceID, linked)
		logErr(err)
		have := map[string]bool{}
		for _, c := range out {
			have[c.ID] = true
		}
		for _, c := range more {
			if !have[c.ID] {
				have[c.ID] = true
				out = append(out, c)
			}
		}
	}
	own, err := s.cfg.Store.OwnBranchContacts(ctx, in.ID, out)
	logErr(err)
	return own
}

// Message is one message of the conversation. The page is HTML, so it
// shows the neutral rendering as is (html/template escapes it), files as
// links to their signed URLs.
type Message struct {
	crm.Rendered
	Direction, Channel, Time, Status string
	// Author names who wrote an outbound message in the page's language
	// ("" when not recorded: messages sent before authors were kept).
	Author string
	// State is the status as stored (queued, sent, delivered, read,
	// failed): what the delivery ticks are drawn from.
	State string
	at    time.Time
}

// Target is one recipient the user may write to: a channel and an address.
type Target struct {
	// Value is what the form sends back: channel id | address.
	Value, Label string
	ChannelID    string
	// Type is the channel's messenger (whatsapp, instagram).
	Type       string
	WindowOpen bool
	// Selected preselects the user's default outbound channel.
	Selected bool
}

// TemplateChoice is an approved template of a target's channel, with a
// field for each of its variables.
type TemplateChoice struct {
	// Value is what the picker sends back: channel id | name | language.
	Value                string
	ChannelID            string
	Name, Language, Body string
	// LangLabel names the template's language for people ("русский",
	// "English (US)").
	LangLabel string
	// Vars are the variables (1…n, with a refused send's typed values);
	// Field is their inputs' name prefix (Field + number).
	Vars  []Var
	Field string
	// Selected preselects the template: the first of the chosen target's
	// channel when its window is closed, or the one a refused send chose.
	Selected bool
}

// Var is one variable of a template: its number and the value a refused
// send carried (shown again, escaped, in its input).
type Var struct {
	N     int
	Value string
}

// Page is what the chat view template shows.
type Page struct {
	Lang string
	T    map[string]string
	// Action is where the send box posts; Sess the signed page session it
	// carries. Both are the provider's. A page behind a cookie session (the
	// cabinet) carries its CSRF token instead of Sess.
	Action, Sess string
	CSRF         string
	Notice       string
	NoticeErr    bool
	Phones       []string
	Messages     []Message
	Targets      []Target
	Templates    []TemplateChoice
	// ReadOnly explains a send box the user's access rights took targets
	// from ("" when none was taken).
	ReadOnly string
	// Hidden says that "own" visibility hid a colleague's dialog with this
	// customer ("" when it hid none), instead of claiming there are no
	// messages or no way to write.
	Hidden string
	// UploadMB is the file limit in megabytes, UploadMax in bytes.
	UploadMB  int64
	UploadMax int64
	// WindowClosed is the preselected target's closed-window banner ("" when
	// its window is open).
	WindowClosed string
	// WindowClosesIn is how many milliseconds after the page was made the
	// first open window among the targets closes (0: none is open).
	// Nothing is stored then to tell the event stream, so the page's
	// script asks for the conversation again at that moment and the send
	// box turns to templates without a reload. Relative, so that the
	// browser's clock does not matter.
	WindowClosesIn int64
	// Banners are the closed-window explanations by messenger, for the
	// page's script when another target is chosen.
	Banners map[string]string
	// Omitted says that some approved templates cannot be sent from the
	// page (a variable in the header), naming them ("" when none is).
	Omitted string
	// Text is a refused send's message text, shown again in the box.
	Text string
	// QuickReplies are the workspace's quick replies for the send box.
	QuickReplies []QuickReply
	// Emoji are the buttons under the text box that put one in the text
	// (the place's own choice; none when nil). They belong to the text
	// box, so they come and go with it.
	Emoji []string
	// Watch are the customers (contact ids) whose messages the page shows:
	// what its event stream may tell about.
	Watch []string
	// Stream is the page's event stream (with its ticket), Refresh where
	// the page posts its session for its messages again; both the
	// provider's, "" for a page without live updates of its own.
	Stream, Refresh string
}

// QuickReply is a quick reply as the send box offers it; the file stays
// on the server, which attaches it when the send names the reply.
type QuickReply struct {
	ID, Title, Text, Filename string
}

// view is what the page and a send both need to know about the record.
type view struct {
	gate     routing.Gate
	def      string // the user's default outbound channel
	chs      []store.Channel
	chName   map[string]string
	owners   map[string]string
	targets  []Target
	readOnly bool
	// closes is when the first open window among the targets closes
	// (zero: none is open).
	closes time.Time
	// cands are every recipient of the record by target value, the ones
	// the access rights took away included, so that a send to one is
	// refused for the right reason.
	cands map[string]candidate
}

// candidate is a recipient of the record: the dialog's owner and the
// address the messenger knows the customer by.
type candidate struct {
	channelID, owner, address string
}

// look works out the gate, the channels and the targets of a record.
func (s *Service) look(ctx context.Context, rec Record) (*view, error) {
	in := rec.Integration
	gate, matrix, err := s.gate(ctx, in, rec.Session)
	if err != nil {
		return nil, err
	}
	v := &view{gate: gate, chName: map[string]string{}, cands: map[string]candidate{}}
	for _, r := range matrix {
		if r.UserID == rec.Session.UserID && r.IsDefault {
			v.def = r.ChannelID
		}
	}
	if v.chs, err = s.cfg.Store.ListChannels(ctx, store.Scope{WorkspaceID: rec.workspace()}); err != nil {
		return nil, err
	}
	for i, ch := range v.chs {
		// The channel is named as this CRM's binding names it.
		if n := strings.TrimSpace(rec.ChannelNames[ch.ID]); n != "" {
			v.chs[i].Name = n
		}
		v.chName[ch.ID] = v.chs[i].Name
	}
	v.owners = s.dialogOwners(ctx, in, rec.Contacts)
	// Where the manager can write: the channel of every known customer,
	// and every active WhatsApp channel to each of the record's numbers.
	// Only where the user may send: a target the access rights take away
	// is left out, and the page says why when the user could read.
	seen := map[string]bool{}
	add := func(ch store.Channel, to, address, owner string, open bool) {
		val := ch.ID + "|" + to
		if seen[val] {
			return
		}
		seen[val] = true
		v.cands[val] = candidate{channelID: ch.ID, owner: owner, address: address}
		if !gate.Sends(ch.ID, owner) {
			v.readOnly = v.readOnly || gate.Sees(ch.ID, owner)
			return
		}
		v.targets = append(v.targets, Target{Value: val, Label: ch.Name + " → " + to, ChannelID: ch.ID, Type: ch.Type, WindowOpen: open})
	}
	for _, ct := range rec.Contacts {
		for _, ch := range v.chs {
			if ch.ID == ct.ChannelID && ch.State == store.ChannelActive {
				open := windowOpen(ch, ct)
				add(ch, cmp.Or(ct.Phone, ct.Username, ct.ExternalID), ct.ExternalID, v.owners[ct.ID], open)
				if c := windowCloses(ch, ct); open && gate.Sends(ch.ID, v.owners[ct.ID]) && (v.closes.IsZero() || c.Before(v.closes)) {
					v.closes = c
				}
			}
		}
	}
	for _, ph := range rec.Phones {
		for _, ch := range v.chs {
			if ch.Type == string(channel.WhatsApp) && ch.State == store.ChannelActive {
				// A customer who never wrote on this channel has no
				// dialog: unassigned.
				add(ch, ph, ph, "", false)
			}
		}
	}
	return v, nil
}

// Build makes the page of a record: its customers' messages the user may
// see, oldest first, and where they may write.
func (s *Service) Build(ctx context.Context, rec Record) (*Page, error) {
	ws, inID := rec.workspace(), rec.integrationID()
	t := Texts(rec.Lang)
	p := &Page{Lang: rec.Lang, T: t, Phones: rec.Phones, UploadMax: s.cfg.UploadMaxBytes, UploadMB: s.cfg.UploadMaxBytes >> 20,
		Banners: map[string]string{}}
	loc := time.UTC
	if w, err := s.cfg.Store.GetWorkspace(ctx, store.All, ws); err != nil {
		s.cfg.Log.Error("chat view: workspace", "integration_id", inID, "err", err)
	} else if l, err := time.LoadLocation(w.Timezone); err == nil {
		loc = l
	}
	v, err := s.look(ctx, rec)
	if err != nil {
		return nil, err
	}
	bodies := map[string]map[string]string{}
	for _, ct := range rec.Contacts {
		// A channel the user has no access to, or a dialog the visibility
		// rule hides, shows nothing at all.
		if !v.gate.Sees(ct.ChannelID, v.owners[ct.ID]) {
			if routing.CanRead(v.gate.Level(ct.ChannelID)) {
				// The channel is readable: visibility hid it.
				p.Hidden = t["hidden_other"]
			}
			continue
		}
		p.Watch = append(p.Watch, ct.ID)
		views, err := s.cfg.Store.ListContactMessages(ctx, ct.ID, HistoryLimit)
		if err != nil {
			// One customer's history missing beats no page at all.
			s.cfg.Log.Error("chat view: messages", "integration_id", inID, "contact_id", ct.ID, "err", err)
			continue
		}
		for i := range views {
			m := &views[i]
			r, err := crm.Render(m, rec.Lang, s.cfg.FileURL)
			if err != nil {
				s.cfg.Log.Error("chat view: render a message", "message_id", m.ID, "err", err)
			}
			if body := s.filledTemplate(ctx, ws, bodies, &m.Message); body != "" {
				// A template shows as the customer read it.
				r.Text = body
			}
			p.Messages = append(p.Messages, Message{Rendered: r, Direction: m.Direction, Channel: v.chName[m.ChannelID],
				Time: FormatTime(m.CreatedAt, loc, rec.Lang), Status: cmp.Or(t["status_"+m.Status], m.Status), State: m.Status, at: m.CreatedAt,
				Author: AuthorLabel(m.Author, t)})
		}
	}
	sort.SliceStable(p.Messages, func(i, j int) bool { return p.Messages[i].at.Before(p.Messages[j].at) })
	p.Targets = v.targets
	if !v.closes.IsZero() {
		p.WindowClosesIn = max(time.Until(v.closes).Milliseconds(), 1)
	}
	if v.readOnly {
		p.ReadOnly = t["read_only"] + " " + cmp.Or(rec.RightsBy, t["rights_by"])
	}
	// The user's default outbound channel is preselected; without one the
	// first target is.
	sel := 0
	for i, tg := range p.Targets {
		if tg.ChannelID == v.def {
			sel = i
			break
		}
	}
	if len(p.Targets) > 0 {
		p.Targets[sel].Selected = true
		if tg := p.Targets[sel]; !tg.WindowOpen {
			p.WindowClosed = crm.WindowClosed(rec.Lang, tg.Type)
		}
	}
	done := map[string]bool{}
	var omitted []string
	for _, tg := range p.Targets {
		p.Banners[tg.Type] = crm.WindowClosed(rec.Lang, tg.Type)
		if done[tg.ChannelID] || tg.Type != string(channel.WhatsApp) {
			continue
		}
		done[tg.ChannelID] = true
		cs, left := s.choices(ctx, ws, tg.ChannelID, rec.Lang)
		p.Templates = append(p.Templates, cs...)
		omitted = append(omitted, left...)
	}
	if len(p.Targets) > 0 {
		qs, err := s.cfg.Store.ListQuickReplies(ctx, store.Scope{WorkspaceID: ws})
		if err != nil {
			return nil, err
		}
		for _, q := range qs {
			p.QuickReplies = append(p.QuickReplies, QuickReply{ID: q.ID, Title: q.Title, Text: q.Text, Filename: q.Filename})
		}
	}
	if len(omitted) > 0 {
		p.Omitted = fmt.Sprintf(t["template_omitted"], strings.Join(omitted, ", "))
	}
	if len(p.Targets) > 0 && p.WindowClosed != "" {
		// A closed window takes only a template: the first of the
		// channel's is chosen, so that the page never starts on a send
		// that is sure to be refused.
		for i := range p.Templates {
			if p.Templates[i].ChannelID == p.Targets[sel].ChannelID {
				p.Templates[i].Selected = true
				break
			}
		}
	}
	return p, nil
}

// Keep shows a refused send again as it was typed: its target, its
// template and the template's variables, and its text. Only a target and
// a template the page offers are chosen; values land in inputs, escaped,
// and come from the POST body the page session vouched for, never from
// the address.
func (p *Page) Keep(f url.Values) {
	if tv := f.Get("target"); tv != "" {
		for i := range p.Targets {
			if p.Targets[i].Value == tv {
				for j := range p.Targets {
					p.Targets[j].Selected = j == i
				}
				p.WindowClosed = ""
				if !p.Targets[i].WindowOpen {
					p.WindowClosed = p.Banners[p.Targets[i].Type]
				}
			}
		}
	}
	_, picked := f["tpl"]
	pick := f.Get("tpl")
	for i := range p.Templates {
		tc := &p.Templates[i]
		if picked {
			tc.Selected = tc.Value == pick
		}
		for j := range tc.Vars {
			tc.Vars[j].Value = f.Get(tc.Field + strconv.Itoa(tc.Vars[j].N))
		}
	}
	p.Text = f.Get("text")
}

// choices are a channel's approved templates the page can fill in, in
// every language, the page's language first. A template with a variable
// or a file in its header is left out — a send carries body parameters
// only, and Meta refuses it without them (132000, 132012) — and
// named in left ("name (language)"), so that the page can say so.
func (s *Service) choices(ctx context.Context, workspaceID, channelID, lang string) (out []TemplateChoice, left []string) {
	if s.cfg.Templates == nil {
		return nil, nil
	}
	ts, err := s.cfg.Templates.List(ctx, store.Scope{WorkspaceID: workspaceID}, channelID)
	if err != nil {
		s.cfg.Log.Warn("chat view: templates", "workspace_id", workspaceID, "channel_id", channelID, "err", err)
		return nil, nil
	}
	for _, t := range ts {
		if !strings.EqualFold(t.Status, "APPROVED") {
			continue
		}
		label := LanguageName(t.Language)
		if t.HeaderVariables > 0 || t.HeaderMedia {
			left = append(left, t.Name+" ("+label+")")
			continue
		}
		c := TemplateChoice{Value: channelID + "|" + t.Name + "|" + t.Language, ChannelID: channelID, Name: t.Name, Language: t.Language,
			LangLabel: label, Body: channel.TemplateBody(t.Components), Field: "tv|" + t.Name + "|" + t.Language + "|"}
		for i := 1; i <= t.BodyVariables; i++ {
			c.Vars = append(c.Vars, Var{N: i})
		}
		out = append(out, c)
	}
	// The user's language first, then by name: the likeliest choice is
	// on top, and the rest stays in a stable order.
	own := func(c TemplateChoice) bool { return sameLanguage(c.Language, lang) }
	sort.SliceStable(out, func(i, j int) bool {
		if own(out[i]) != own(out[j]) {
			return own(out[i])
		}
		return out[i].Name < out[j].Name
	})
	return out, left
}

// Gate is what a user (their CRM user id and admin flag in ss) may see
// and do in the integration's dialogs: the same rule the card pages
// apply, for a list of dialogs (the cabinet's shared chat).
func (s *Service) Gate(ctx context.Context, in *store.Integration, ss *crm.Session) (routing.Gate, error) {
	g, _, err := s.gate(ctx, in, ss)
	return g, err
}

// gate is what the page's user may see and do in the integration: the
// routing core's access matrix and visibility rule, the CRM's admins
// passing everything (see routing.Gate). The matrix comes along for the
// user's default channel. Without an integration (a channel bound to no
// CRM) there are no rights to apply: the gate passes everything, as an
// integration's does before its matrix is set.
func (s *Service) gate(ctx context.Context, in *store.Integration, ss *crm.Session) (routing.Gate, []store.ChannelAccess, error) {
	if in == nil {
		return routing.NewGate(routing.IntegrationSettings{}, nil, "", true), nil, nil
	}
	settings, err := routing.SettingsOf(in)
	if err != nil {
		// Settings that do not decode would silently open what an admin
		// closed: the page refuses instead.
		return routing.Gate{}, nil, err
	}
	matrix, err := s.cfg.Store.AccessMatrix(ctx, in.ID)
	if err != nil {
		return routing.Gate{}, nil, err
	}
	return routing.NewGate(settings, matrix, ss.UserID, ss.Admin), matrix, nil
}

// unknownOwner stands for an owner that could not be read: no CRM user id
// has a NUL in it.
const unknownOwner = "\x00unknown"

// dialogOwners are the owners of the customers' dialogs in this
// integration, by contact id; a customer without a dialog is unassigned
// (absent). A failed lookup is logged and counts as owned by nobody the
// user could be, so "own" visibility hides rather than leaks it.
func (s *Service) dialogOwners(ctx context.Context, in *store.Integration, contacts []store.Contact) map[string]string {
	out := map[string]string{}
	if in == nil {
		return out // nobody owns a conversation outside a CRM
	}
	for _, ct := range contacts {
		d, err := s.cfg.Store.FindDialog(ctx, store.DialogKey{IntegrationID: in.ID, ChannelID: ct.ChannelID, ContactID: ct.ID})
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			s.cfg.Log.Error("chat view: dialog owner", "integration_id", in.ID, "contact_id", ct.ID, "err", err)
			out[ct.ID] = unknownOwner
		case d.OwnerUserID != "":
			out[ct.ID] = d.OwnerUserID
		}
	}
	return out
}

// windowOpen is whether a free-form message may reach the customer: within
// 24 hours of their last message, on Instagram within 7 days (sent with
// the HUMAN_AGENT tag after 24 hours), as messaging decides a send.
func windowOpen(ch store.Channel, ct store.Contact) bool {
	return ct.LastInboundAt != nil && !time.Now().After(windowCloses(ch, ct))
}

// windowCloses is when the customer's window on the channel closes (zero
// when they never wrote).
func windowCloses(ch store.Channel, ct store.Contact) time.Time {
	if ct.LastInboundAt == nil {
		return time.Time{}
	}
	window := messaging.ServiceWindow
	if ch.Type == string(channel.Instagram) {
		window = messaging.HumanAgentWindow
	}
	return ct.LastInboundAt.Add(window)
}

// filledTemplate is a sent template's text as the customer got it: the
// synced template's body with {{n}} replaced by the message's parameters
// ("" when the message is no template or its template is not synced, and
// the stored preview stays). bodies caches each channel's bodies by
// name|language for the page.
func (s *Service) filledTemplate(ctx context.Context, workspaceID string, bodies map[string]map[string]string, m *store.Message) string {
	if m.Template == nil || s.cfg.Templates == nil {
		return ""
	}
	var t channel.Template
	if err := json.Unmarshal([]byte(*m.Template), &t); err != nil {
		s.cfg.Log.Warn("chat view: a message's template", "message_id", m.ID, "err", err)
		return ""
	}
	byKey, ok := bodies[m.ChannelID]
	if !ok {
		byKey = map[string]string{}
		ts, err := s.cfg.Templates.List(ctx, store.Scope{WorkspaceID: workspaceID}, m.ChannelID)
		if err != nil {
			s.cfg.Log.Warn("chat view: templates", "workspace_id", workspaceID, "channel_id", m.ChannelID, "err", err)
		}
		for _, st := range ts {
			byKey[st.Name+"|"+st.Language] = channel.TemplateBody(st.Components)
		}
		bodies[m.ChannelID] = byKey
	}
	return channel.FillTemplate(byKey[t.Name+"|"+t.Language], t.Params)
}

// AuthorLabel names a message's author with the page's texts t: a
// person by name (a CRM user without a stored name by id), an automation
// by what it is; "" for none recorded.
func AuthorLabel(a *store.MessageAuthor, t map[string]string) string {
	switch {
	case a == nil:
		return ""
	case a.Name != "":
		return a.Name
	case a.Kind == store.AuthorAPI || a.Kind == store.AuthorAuto:
		return t["author_"+a.Kind]
	case a.Kind == store.AuthorRobot:
		return cmp.Or(t["author_robot_"+a.UserID], t["author_robot"])
	case a.UserID != "":
		return fmt.Sprintf(t["author_user"], a.UserID)
	}
	return ""
}

// FormatTime is how a page shows a moment, in the account's time zone
// loc: one format per language, so that a page never mixes two (the
// cabinet's lists and the conversation use it alike).
func FormatTime(t time.Time, loc *time.Location, lang string) string {
	if loc == nil {
		loc = time.UTC
	}
	if lang == "en" {
		return t.In(loc).Format("Jan 2, 2006 15:04")
	}
	return t.In(loc).Format("02.01.2006 15:04")
}

// languageNames name the template languages people meet most; others
// show their code.
var languageNames = map[string]string{
	"ru": "русский", "en": "English", "en_US": "English (US)", "en_GB": "English (UK)", "kk": "қазақша",
	"uz": "oʻzbekcha", "uk": "українська", "de": "Deutsch", "es": "Español", "fr": "Français", "tr": "Türkçe",
}

// LanguageName labels a template's language code for the picker, with
// the code for clarity: "English (US) · en_US".
func LanguageName(code string) string {
	if n, ok := languageNames[code]; ok {
		return n + " · " + code
	}
	return code
}

// sameLanguage says whether a template's language code (ru, en_US) is the
// page's language (ru, en).
func sameLanguage(code, lang string) bool {
	base, _, _ := strings.Cut(code, "_")
	return strings.EqualFold(base, lang)
}
