package bitrix24

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	phonenum "github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Card tabs we place in CRM records, by entity.
var tabPlacements = map[string]string{"CRM_LEAD_DETAIL_TAB": "lead", "CRM_DEAL_DETAIL_TAB": "deal", "CRM_CONTACT_DETAIL_TAB": "contact"}

var entityRef = regexp.MustCompile(`^(lead|deal|contact):[0-9]{1,12}$`)

// tabMessage is one message on the card tab. The tab is an HTML page, so
// it shows the neutral rendering as is (html/template escapes it): no
// BB-code, no U+200B, and files as links to their signed URLs.
type tabMessage struct {
	crm.Rendered
	Direction, Channel, Time, Status string
	at                               time.Time
}

type tabTarget struct {
	Value, Label string
	WindowOpen   bool
}

type tabPage struct {
	Lang, Sess, Notice string
	NoticeErr          bool
	T                  map[string]string
	Phones             []string
	Messages           []tabMessage
	Targets            []tabTarget
	// ReadOnly explains a send box the user's access rights took
	// targets from ("" when none was taken).
	ReadOnly string
	// Hidden says that "own" visibility hid a colleague's dialog with
	// this customer ("" when it hid none), instead of claiming there are
	// no messages or no way to write.
	Hidden string
}

// ServeTab shows the conversation with a CRM record's customer and lets
// the manager write first.
func (s *Service) ServeTab(w http.ResponseWriter, r *http.Request) {
	in, ss, form, err := s.pageEntry(w, r)
	if form != nil && err == nil {
		// Opened from a card: the placement names the record.
		entity, ok := tabPlacements[form.Get("PLACEMENT")]
		var opts struct {
			ID json.RawMessage `json:"ID"`
		}
		// Malformed options leave the ID empty, which the check below refuses.
		if jerr := json.Unmarshal([]byte(form.Get("PLACEMENT_OPTIONS")), &opts); jerr != nil {
			opts.ID = nil
		}
		ss.Entity = entity + ":" + strings.Trim(string(opts.ID), `"`)
		if !ok || !entityRef.MatchString(ss.Entity) {
			err = fault.New(fault.Malformed, "placement_invalid", "this page is a CRM card tab; PLACEMENT or PLACEMENT_OPTIONS.ID is missing")
		}
	}
	if err != nil {
		writePageError(w, r, ss, err)
		return
	}
	t := textsFor(ss.Lang)
	notice, isErr := "", false
	// After a send the redirect names the outcome by code; the words are
	// the page's own, so a crafted link cannot put text on the page.
	if r.Method == http.MethodGet && r.URL.Query().Get("sent") == "1" {
		notice = t["sent"]
	} else if e := r.URL.Query().Get("error"); r.Method == http.MethodGet && e != "" {
		notice, isErr = errText(ss.Lang, e), true
		if e == "window_closed" {
			// The send names the messenger; a crafted value only picks
			// another of the fixed explanations.
			notice = crm.WindowClosed(shownLang(ss.Lang), r.URL.Query().Get("messenger"))
		}
	}
	s.renderTab(w, r, in, ss, notice, isErr)
}

func (s *Service) renderTab(w http.ResponseWriter, r *http.Request, in *store.Integration, ss *crm.Session, notice string, isErr bool) {
	ctx := r.Context()
	t := textsFor(ss.Lang)
	p := tabPage{Lang: ss.Lang, Sess: s.sessions.Sign(*ss), Notice: notice, NoticeErr: isErr, T: t}
	// One read of the workspace serves the record's numbers and the clock.
	loc := time.UTC
	ws, err := s.store.GetWorkspace(ctx, store.All, in.WorkspaceID)
	if err != nil {
		s.log.Error("bitrix24 tab: workspace", "integration_id", in.ID, "err", err)
	} else if l, err := time.LoadLocation(ws.Timezone); err == nil {
		loc = l
	}
	var phones []string
	if ws != nil {
		if phones, err = s.entityPhones(ctx, in, ws, ss.Entity); err != nil {
			s.log.Warn("bitrix24 tab: record phones", "integration_id", in.ID, "entity", ss.Entity, "err", err)
		}
	}
	p.Phones = phones
	contacts := s.tabContacts(ctx, in, ss.Entity, phones)
	gate, err := s.gateOf(ctx, in, ss)
	if err != nil {
		s.log.Error("bitrix24 tab: access rights", "integration_id", in.ID, "err", err)
		writePageError(w, r, ss, err)
		return
	}
	chs, err := s.store.ListChannels(ctx, store.Scope{WorkspaceID: in.WorkspaceID})
	if err != nil {
		s.log.Error("bitrix24 tab: channels", "integration_id", in.ID, "err", err)
		writePageError(w, r, ss, err)
		return
	}
	chName := map[string]string{}
	for _, ch := range chs {
		chName[ch.ID] = ch.Name
	}
	owners := s.dialogOwners(ctx, in, contacts)
	for _, ct := range contacts {
		// A channel the user has no access to, or a dialog the
		// visibility rule hides, shows nothing at all.
		if !gate.Sees(ct.ChannelID, owners[ct.ID]) {
			if routing.CanRead(gate.Level(ct.ChannelID)) {
				// The channel is readable: visibility hid it.
				p.Hidden = t["hidden_other"]
			}
			continue
		}
		views, err := s.store.ListContactMessages(ctx, ct.ID, 100)
		if err != nil {
			// One customer's history missing beats no page at all.
			s.log.Error("bitrix24 tab: messages", "integration_id", in.ID, "contact_id", ct.ID, "err", err)
			continue
		}
		for i := range views {
			m := &views[i]
			p.Messages = append(p.Messages, tabMessage{Rendered: s.render(m, ss.Lang), Direction: m.Direction, Channel: chName[m.ChannelID],
				Time: m.CreatedAt.In(loc).Format("02.01.2006 15:04"), Status: cmp.Or(t["status_"+m.Status], m.Status), at: m.CreatedAt})
		}
	}
	sort.SliceStable(p.Messages, func(i, j int) bool { return p.Messages[i].at.Before(p.Messages[j].at) })
	// Where the manager can write: every active WhatsApp channel to each
	// phone, and the channel of every known contact.
	// Only where the user may send: a target the access rights take
	// away is left out, and the page says why when the user could read.
	seen := map[string]bool{}
	readOnly := false
	add := func(ch store.Channel, to, owner string, open bool) {
		v := ch.ID + "|" + to
		if seen[v] {
			return
		}
		seen[v] = true
		if !gate.Sends(ch.ID, owner) {
			readOnly = readOnly || gate.Sees(ch.ID, owner)
			return
		}
		p.Targets = append(p.Targets, tabTarget{Value: v, Label: ch.Name + " → " + to, WindowOpen: open})
	}
	for _, ct := range contacts {
		for _, ch := range chs {
			if ch.ID == ct.ChannelID && ch.State == store.ChannelActive {
				add(ch, cmp.Or(ct.Phone, ct.Username, ct.ExternalID), owners[ct.ID], windowOpen(ct))
			}
		}
	}
	for _, ph := range phones {
		for _, ch := range chs {
			if ch.Type == string(channel.WhatsApp) && ch.State == store.ChannelActive {
				// A customer who never wrote on this channel has no
				// dialog: unassigned.
				add(ch, ph, "", false)
			}
		}
	}
	if readOnly {
		p.ReadOnly = t["read_only"]
	}
	s.renderTemplate(w, in, ss.Lang, http.StatusOK, "b24_tab.html", p)
}

func windowOpen(ct store.Contact) bool {
	return ct.LastInboundAt != nil && time.Since(*ct.LastInboundAt) <= messaging.ServiceWindow
}

// entityPhones reads the record's phone numbers (a deal's through its
// contact), normalised to E.164.
func (s *Service) entityPhones(ctx context.Context, in *store.Integration, ws *store.Workspace, entity string) ([]string, error) {
	kind, id, _ := strings.Cut(entity, ":")
	var rec struct {
		ContactID json.RawMessage `json:"CONTACT_ID"`
		Phone     []struct {
			Value string `json:"VALUE"`
		} `json:"PHONE"`
	}
	if err := s.client.Call(ctx, in.ID, "crm."+kind+".get", map[string]any{"id": id}, &rec); err != nil {
		return nil, err
	}
	if kind == "deal" {
		cid := strings.Trim(string(rec.ContactID), `"`)
		if cid == "" || cid == "null" || cid == "0" {
			return nil, nil
		}
		rec.Phone = nil
		if err := s.client.Call(ctx, in.ID, "crm.contact.get", map[string]any{"id": cid}, &rec); err != nil {
			return nil, err
		}
	}
	// The record's numbers are read the way the workspace's people write
	// them (8 912 … is +7 912 … unless the workspace turned that off).
	numbers := phonenum.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion}
	var out []string
	for _, p := range rec.Phone {
		if e164, err := phonenum.Normalize(p.Value, numbers); err == nil {
			out = append(out, e164)
		}
	}
	return out, nil
}

// tabContacts finds our customers behind a CRM record: by phone, and by
// the record links CRM mode made.
func (s *Service) tabContacts(ctx context.Context, in *store.Integration, entity string, phones []string) []store.Contact {
	// A failed lookup shows fewer customers (and allows fewer recipients);
	// it is logged rather than failing the page.
	logErr := func(err error) {
		if err != nil {
			s.log.Error("bitrix24 tab: customers of a record", "integration_id", in.ID, "entity", entity, "err", err)
		}
	}
	var out []store.Contact
	if len(phones) > 0 {
		digits := make([]string, len(phones))
		for i, p := range phones {
			digits[i] = phonenum.Digits(p)
		}
		found, err := s.store.ContactsByExternalIDs(ctx, in.WorkspaceID, digits)
		logErr(err)
		out = found
	}
	kind, id, _ := strings.Cut(entity, ":")
	var linked []string
	switch kind {
	case "contact":
		ids, err := s.store.LocalIDsByRemote(ctx, in.ID, linkCRMContact, id)
		logErr(err)
		linked = ids
	case "lead", "deal":
		locals, err := s.store.LocalIDsByRemote(ctx, in.ID, "crm_"+kind, id)
		logErr(err)
		for _, l := range locals {
			if _, c, ok := strings.Cut(l, ":"); ok {
				linked = append(linked, c)
			}
		}
	}
	if len(linked) > 0 {
		more, err := s.store.ContactsByIDs(ctx, in.WorkspaceID, linked)
		logErr(err)
		have := map[string]bool{}
		for _, c := range out {
			have[c.ID] = true
		}
		for _, c := range more {
			if !have[c.ID] {
				out = append(out, c)
			}
		}
	}
	// A customer of another branch of a shared channel is not this
	// portal's to see; on a failed check none is shown.
	own, err := s.store.OwnBranchContacts(ctx, in.ID, out)
	logErr(err)
	return own
}

// ServeTabSend sends the manager's first message (text or template).
func (s *Service) ServeTabSend(w http.ResponseWriter, r *http.Request) {
	if _, err := readForm(w, r); err != nil {
		writePageError(w, r, nil, err)
		return
	}
	in, ss, err := s.sessionFrom(r)
	if err != nil || ss.Entity == "" {
		writePageError(w, r, ss, firstErr(err, errNotAuthenticated))
		return
	}
	// The body only: a query string (a link) sends nothing.
	f := r.PostForm
	chID, to, _ := strings.Cut(f.Get("target"), "|")
	req := messaging.SendRequest{To: to, Text: strings.TrimSpace(f.Get("text"))}
	if tpl := strings.TrimSpace(f.Get("template")); tpl != "" {
		req.Template = &channel.Template{Name: tpl, Language: cmp.Or(strings.TrimSpace(f.Get("template_language")), ss.Lang)}
		for _, p := range strings.Split(f.Get("template_params"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				req.Template.Params = append(req.Template.Params, p)
			}
		}
		req.Text = ""
	}
	// The target must be one the page offered: a channel of this workspace
	// to a number of this record (or a contact behind it).
	allowed := false
	ws, err := s.store.GetWorkspace(r.Context(), store.All, in.WorkspaceID)
	var phones []string
	if err == nil {
		phones, err = s.entityPhones(r.Context(), in, ws, ss.Entity)
	}
	if err != nil {
		// The record's own numbers are unknown; a contact linked to it
		// may still be allowed below.
		s.log.Warn("bitrix24 tab send: record phones", "integration_id", in.ID, "entity", ss.Entity, "err", err)
	}
	for _, p := range phones {
		if p == to {
			allowed = true
		}
	}
	owner := ""
	contacts := s.tabContacts(r.Context(), in, ss.Entity, phones)
	owners := s.dialogOwners(r.Context(), in, contacts)
	for _, ct := range contacts {
		if ct.ChannelID == chID && (to == ct.Phone || to == ct.Username || to == ct.ExternalID) {
			allowed = true
			req.To = ct.ExternalID
			owner = owners[ct.ID]
		}
	}
	// The access rights (item 4) and visibility (item 5): refused with a
	// 403 and the reason in the page's language, before anything is sent.
	if allowed {
		gate, err := s.gateOf(r.Context(), in, ss)
		if err != nil {
			s.log.Error("bitrix24 tab send: access rights", "integration_id", in.ID, "err", err)
			writePageError(w, r, ss, err)
			return
		}
		switch {
		case !gate.Sees(chID, owner):
			writePageError(w, r, ss, fault.New(fault.Forbidden, "access_denied", "no access to this conversation"))
			return
		case !gate.Sends(chID, owner):
			writePageError(w, r, ss, fault.New(fault.Forbidden, "channel_read_only", "read-only access to this channel"))
			return
		}
	}
	q := url.Values{"sess": {s.sessions.Sign(*ss)}}
	if !allowed {
		q.Set("error", "recipient_foreign")
	} else {
		req.OnStored = s.crmSendStored(in, ss.UserID)
		var m *store.Message
		m, err = s.msg.Send(r.Context(), store.Scope{WorkspaceID: in.WorkspaceID}, chID, req)
		var me *fault.Error
		switch {
		case err == nil:
			q.Set("sent", "1")
			// A manager's answer may make them the customer's owner.
			s.claimByAnswer(r.Context(), in, chID, m.ContactID, ss.UserID)
		case errors.As(err, &me):
			// The code travels; the page words it in its language.
			q.Set("error", me.Code)
			if me.Code == "window_closed" {
				// The explanation differs by messenger.
				if ch, err := s.store.GetChannel(r.Context(), store.Scope{WorkspaceID: in.WorkspaceID}, chID); err == nil {
					q.Set("messenger", ch.Type)
				}
			}
		case errors.Is(err, store.ErrNotFound):
			q.Set("error", "channel_not_found")
		default:
			s.log.Error("bitrix24 tab send", "integration_id", in.ID, "err", err)
			q.Set("error", "internal")
		}
	}
	http.Redirect(w, r, "/bitrix24/tab?"+q.Encode(), http.StatusSeeOther)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// gateOf is what the page's user may see and do in the integration: the
// routing core's access matrix and visibility rule, the portal's admins
// passing everything (see routing.Gate).
func (s *Service) gateOf(ctx context.Context, in *store.Integration, ss *crm.Session) (routing.Gate, error) {
	settings, err := routing.SettingsOf(in)
	if err != nil {
		// Settings that do not decode would silently open what an admin
		// closed: the page refuses instead.
		return routing.Gate{}, err
	}
	matrix, err := s.store.AccessMatrix(ctx, in.ID)
	if err != nil {
		return routing.Gate{}, err
	}
	return routing.NewGate(settings, matrix, ss.UserID, ss.Admin), nil
}

// unknownOwner stands for an owner that could not be read: no CRM user
// id has a NUL in it.
const unknownOwner = "\x00unknown"

// dialogOwners are the owners of the customers' dialogs in this
// integration, by contact id; a customer without a dialog is unassigned
// (absent). A failed lookup is logged and counts as owned by nobody the
// user could be, so "own" visibility hides rather than leaks it.
func (s *Service) dialogOwners(ctx context.Context, in *store.Integration, contacts []store.Contact) map[string]string {
	out := map[string]string{}
	for _, ct := range contacts {
		d, err := s.store.FindDialog(ctx, store.DialogKey{IntegrationID: in.ID, ChannelID: ct.ChannelID, ContactID: ct.ID})
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			s.log.Error("bitrix24 tab: dialog owner", "integration_id", in.ID, "contact_id", ct.ID, "err", err)
			out[ct.ID] = unknownOwner
		case d.OwnerUserID != "":
			out[ct.ID] = d.OwnerUserID
		}
	}
	return out
}
