package bitrix24

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	phonenum "github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/store"
)

// Card tabs we place in CRM records, by entity.
var tabPlacements = map[string]string{"CRM_LEAD_DETAIL_TAB": "lead", "CRM_DEAL_DETAIL_TAB": "deal", "CRM_CONTACT_DETAIL_TAB": "contact"}

var entityRef = regexp.MustCompile(`^(lead|deal|contact):[0-9]{1,12}$`)

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
	notice, isErr := "", false
	if r.Method == http.MethodGet {
		// After a send the redirect names the outcome by code; the words
		// are the page's own, so a crafted link cannot put text on it.
		notice, isErr = chatview.Notice(shownLang(ss.Lang), r.URL.Query())
	}
	s.renderTab(w, r, in, ss, http.StatusOK, notice, isErr, nil)
}

// renderTab shows the tab; keep, when set, is a refused send's form,
// shown again as it was typed (its template and variables too).
func (s *Service) renderTab(w http.ResponseWriter, r *http.Request, in *store.Integration, ss *crm.Session, status int, notice string, isErr bool, keep url.Values) {
	rec := s.tabRecord(r.Context(), in, ss)
	p, err := s.chat.Build(r.Context(), rec)
	if err != nil {
		s.log.Error("bitrix24 tab", "integration_id", in.ID, "err", err)
		writePageError(w, r, ss, err)
		return
	}
	if keep != nil {
		p.Keep(keep)
	}
	p.Action, p.Sess, p.Notice, p.NoticeErr = "/bitrix24/tab/send", s.sessions.Sign(*ss), notice, isErr
	p.Live(s.sessions, ss, in, "/bitrix24/tab")
	s.renderTemplate(w, in, ss.Lang, status, "b24_tab.html", p)
}

// ServeTabLog is POST /bitrix24/tab/log: the tab's messages again, for its
// live updates, with a fresh stream ticket and session. The session comes
// in the body, as a send's does.
func (s *Service) ServeTabLog(w http.ResponseWriter, r *http.Request) {
	if _, err := readForm(w, r); err != nil {
		writePageError(w, r, nil, err)
		return
	}
	in, ss, err := s.sessionFrom(r)
	if err != nil || ss.Entity == "" {
		writePageError(w, r, ss, firstErr(err, errNotAuthenticated))
		return
	}
	p, err := s.chat.Build(r.Context(), s.tabRecord(r.Context(), in, ss))
	if err != nil {
		s.log.Error("bitrix24 tab: refresh", "integration_id", in.ID, "err", err)
		writePageError(w, r, ss, err)
		return
	}
	// The refresh brings the send box too (the window may have opened).
	p.Action, p.Sess = "/bitrix24/tab/send", s.sessions.Sign(*ss)
	p.Live(s.sessions, ss, in, "/bitrix24/tab")
	s.renderTemplate(w, in, ss.Lang, http.StatusOK, "chat_live", p)
}

// ServeTabEvents is GET /bitrix24/tab/events: the tab's event stream,
// opened by the ticket the page got (see chatview.Page.Live).
func (s *Service) ServeTabEvents(w http.ResponseWriter, r *http.Request) {
	s.chat.ServeTicketStream(w, r, s.sessions, Type)
}

// tabRightsBy says who sets the access rights inside Bitrix24.
var tabRightsBy = map[string]string{
	"ru": "Права настраивает администратор портала Bitrix24 в настройках приложения Switchboard.",
	"en": "The Bitrix24 portal's admin sets the access rights in the Switchboard app's settings.",
}

// tabRecord is the card's record as the chat view needs it: its numbers
// and the customers behind it.
func (s *Service) tabRecord(ctx context.Context, in *store.Integration, ss *crm.Session) chatview.Record {
	var phones []string
	ws, err := s.store.GetWorkspace(ctx, store.All, in.WorkspaceID)
	if err == nil {
		phones, err = s.entityPhones(ctx, in, ws, ss.Entity)
	}
	if err != nil {
		// The record's own numbers are unknown; a customer linked to it
		// may still be shown.
		s.log.Warn("bitrix24 tab: record phones", "integration_id", in.ID, "entity", ss.Entity, "err", err)
	}
	names := map[string]string{}
	bs, err := s.store.ListBindings(ctx, in.ID)
	if err != nil {
		// The channels keep their own names.
		s.log.Warn("bitrix24 tab: binding names", "integration_id", in.ID, "err", err)
	}
	for _, b := range bs {
		names[b.ChannelID] = b.Name
	}
	return chatview.Record{Integration: in, Session: ss, Lang: shownLang(ss.Lang), Phones: phones,
		Contacts: s.chat.Customers(ctx, in, phones, s.tabLinked(ctx, in, ss.Entity)), ChannelNames: names, RightsBy: tabRightsBy[shownLang(ss.Lang)]}
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

// tabLinked are the customers (store contact ids) CRM mode linked to a
// record. A failed lookup links none; it is logged rather than failing
// the page.
func (s *Service) tabLinked(ctx context.Context, in *store.Integration, entity string) []string {
	kind, id, _ := strings.Cut(entity, ":")
	var linked []string
	switch kind {
	case "contact":
		ids, err := s.store.LocalIDsByRemote(ctx, in.ID, linkCRMContact, id)
		if err != nil {
			s.log.Error("bitrix24 tab: customers of a record", "integration_id", in.ID, "entity", entity, "err", err)
		}
		linked = ids
	case "lead", "deal":
		locals, err := s.store.LocalIDsByRemote(ctx, in.ID, "crm_"+kind, id)
		if err != nil {
			s.log.Error("bitrix24 tab: customers of a record", "integration_id", in.ID, "entity", entity, "err", err)
		}
		for _, l := range locals {
			if _, c, ok := strings.Cut(l, ":"); ok {
				linked = append(linked, c)
			}
		}
	}
	return linked
}

// ServeTabSend sends the manager's message (text, file or template).
func (s *Service) ServeTabSend(w http.ResponseWriter, r *http.Request) {
	var err error
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		err = s.chat.ReadForm(w, r)
	} else {
		_, err = readForm(w, r)
	}
	if err != nil {
		writePageError(w, r, nil, err)
		return
	}
	in, ss, err := s.sessionFrom(r)
	if err != nil || ss.Entity == "" {
		writePageError(w, r, ss, firstErr(err, errNotAuthenticated))
		return
	}
	scope := store.Scope{WorkspaceID: in.WorkspaceID}
	send := func(ctx context.Context, channelID string, req messaging.SendRequest) (*store.Message, error) {
		req.OnStored = s.crmSendStored(in, ss.UserID)
		m, err := s.msg.Send(ctx, scope, channelID, req)
		if err == nil {
			// A manager's answer may make them the customer's owner.
			s.claimByAnswer(ctx, in, channelID, m.ContactID, ss.UserID)
		}
		return m, err
	}
	q, err := s.chat.Send(r.Context(), s.tabRecord(r.Context(), in, ss), r, send)
	if err != nil {
		// The access rights (item 4) and visibility (item 5): refused
		// with a 403 and the reason in the page's language.
		writePageError(w, r, ss, err)
		return
	}
	if q.Get("error") != "" {
		// A refusal shows the tab again with what was typed (see the
		// amoCRM card window).
		notice, _ := chatview.Notice(shownLang(ss.Lang), q)
		s.renderTab(w, r, in, ss, http.StatusUnprocessableEntity, notice, true, r.PostForm)
		return
	}
	q.Set("sess", s.sessions.Sign(*ss))
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
