package amocrm

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web/httperr"
	"github.com/switchboard/switchboard/web"
)

// The card window is the widget's iframe in a lead's or contact's card
// column: the conversation with the record's customers and a send box
// (internal/crm/chatview). amoCRM's own parts are here: the page session
// (a ticket, then "sess"), the record's customers (the connector's links
// and the record's contacts' numbers), and the send through SendAsManager.

// cardTemplates are the card window's page around the shared chat view.
var cardTemplates = template.Must(template.ParseFS(web.Templates, "templates/amo_card.html", "templates/chat_*.html"))

// cardMaxContacts bounds the contacts of a lead whose numbers are read
// while the page loads (one call each).
const cardMaxContacts = 5

// cardAncestors are the origins that may frame a refusal before the
// account is known.
const cardAncestors = "https://*.amocrm.ru https://*.amocrm.com https://*.kommo.com"

// cardTexts are the card window's own refusals (its session); a send's
// are the chat view's.
var cardTexts = map[string]map[string]string{
	"ru": {
		"page_session_invalid": "Сессия окна недействительна или уже использована. Откройте карточку в amoCRM заново.",
		"page_session_expired": "Окно открыто слишком долго. Откройте карточку в amoCRM заново.",
		"account_unknown":      "Этот аккаунт amoCRM не подключён к Switchboard. Установите виджет заново.",
		"entity_invalid":       "Окно открывается из карточки сделки или контакта.",
		"body_too_large":       "Файл слишком большой.",
		"rights_by":            "Права настраивает администратор аккаунта amoCRM в настройках виджета Switchboard.",
	},
	"en": {
		"page_session_invalid": "The window's session is not valid or already used. Open the card in amoCRM again.",
		"page_session_expired": "The window has been open too long. Open the card in amoCRM again.",
		"account_unknown":      "This amoCRM account is not connected to Switchboard. Install the widget again.",
		"entity_invalid":       "The window opens from a lead's or a contact's card.",
		"body_too_large":       "The file is too large.",
		"rights_by":            "The amoCRM account's admin sets the access rights in the Switchboard widget's settings.",
	},
}

// ServeCard is GET /amocrm/card: opened by the widget with ?ticket=…,
// entity=leads|contacts, id and lang, then with the page's own sess after
// a send.
func (s *Service) ServeCard(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in, ss, err := s.PageSession(r, PurposeCard, q.Get("lang"), cardEntity(q.Get("entity"), q.Get("id")))
	if err != nil {
		s.cardError(w, r, in, ss, err)
		return
	}
	notice, isErr := "", false
	if q.Get("ticket") == "" {
		// After a send the redirect names the outcome by code; the words
		// are the page's own.
		notice, isErr = chatview.Notice(ss.Lang, q)
	}
	s.renderCard(w, r, in, ss, http.StatusOK, notice, isErr, nil)
}

// renderCard shows the card window; keep, when set, is a refused send's
// form, shown again as it was typed (its template and variables too).
func (s *Service) renderCard(w http.ResponseWriter, r *http.Request, in *store.Integration, ss *crm.Session, status int, notice string, isErr bool, keep url.Values) {
	rec := s.cardRecord(r.Context(), in, ss)
	p, err := s.chat.Build(r.Context(), rec)
	if err != nil {
		s.cardError(w, r, in, ss, err)
		return
	}
	if keep != nil {
		p.Keep(keep)
	}
	p.Action = "/amocrm/card/send?" + url.Values{"lang": {ss.Lang}}.Encode()
	p.Sess, p.Notice, p.NoticeErr = s.SignSession(ss), notice, isErr
	p.Live(s.sessions, ss, in, "/amocrm/card")
	s.writeCard(w, r, in, ss, status, "amo_card.html", p)
}

// ServeCardLog is POST /amocrm/card/log: the window's messages again, for
// its live updates, with a fresh stream ticket and session. The session
// comes in the body only.
func (s *Service) ServeCardLog(w http.ResponseWriter, r *http.Request) {
	in, ss, ok := s.cardPost(w, r)
	if !ok {
		return
	}
	p, err := s.chat.Build(r.Context(), s.cardRecord(r.Context(), in, ss))
	if err != nil {
		s.cardError(w, r, in, ss, err)
		return
	}
	// The refresh brings the send box too (the window may have opened).
	p.Action = "/amocrm/card/send?" + url.Values{"lang": {ss.Lang}}.Encode()
	p.Sess = s.SignSession(ss)
	p.Live(s.sessions, ss, in, "/amocrm/card")
	s.writeCard(w, r, in, ss, http.StatusOK, "chat_live", p)
}

// ServeCardEvents is GET /amocrm/card/events: the window's event stream,
// opened by the ticket the page got (see chatview.Page.Live), never by the
// page session.
func (s *Service) ServeCardEvents(w http.ResponseWriter, r *http.Request) {
	s.chat.ServeTicketStream(w, r, s.sessions, Type)
}

// cardPost reads a POST of the window (form or multipart) and its page
// session, which comes in the body only; on a refusal it has answered.
func (s *Service) cardPost(w http.ResponseWriter, r *http.Request) (*store.Integration, *crm.Session, bool) {
	if err := s.chat.ReadForm(w, r); err != nil {
		s.cardError(w, r, nil, nil, err)
		return nil, nil, false
	}
	in, ss, err := s.PageSession(r, PurposeCard, "", "")
	if err != nil {
		s.cardError(w, r, in, ss, err)
		return nil, nil, false
	}
	return in, ss, true
}

// writeCard renders one of the window's templates.
func (s *Service) writeCard(w http.ResponseWriter, r *http.Request, in *store.Integration, ss *crm.Session, status int, name string, p *chatview.Page) {
	var buf bytes.Buffer
	// Rendered into a buffer first, so that a template error cannot leave
	// half a page behind a 200.
	if err := cardTemplates.ExecuteTemplate(&buf, name, p); err != nil {
		s.cardError(w, r, in, ss, err)
		return
	}
	s.cardHeaders(w, in)
	w.WriteHeader(status)
	if _, err := buf.WriteTo(w); err != nil {
		return // the client went away
	}
}

// ServeCardSend is POST /amocrm/card/send: the send box (multipart, with
// an optional file). The session is read from the body only, so a link
// cannot send; a recipient the user may not write to is a 403.
func (s *Service) ServeCardSend(w http.ResponseWriter, r *http.Request) {
	in, ss, ok := s.cardPost(w, r)
	if !ok {
		return
	}
	send := func(ctx context.Context, channelID string, req messaging.SendRequest) (*store.Message, error) {
		return s.SendAsManager(ctx, in, ss.UserID, channelID, req, nil)
	}
	q, err := s.chat.Send(r.Context(), s.cardRecord(r.Context(), in, ss), r, send)
	if err != nil {
		s.cardError(w, r, in, ss, err)
		return
	}
	if q.Get("error") != "" {
		// A refusal shows the page again with what was typed, rather
		// than a redirect that would lose the template and its
		// variables (or carry them in the address).
		notice, _ := chatview.Notice(ss.Lang, q)
		s.renderCard(w, r, in, ss, http.StatusUnprocessableEntity, notice, true, r.PostForm)
		return
	}
	q.Set("sess", s.SignSession(ss))
	http.Redirect(w, r, "/amocrm/card?"+q.Encode(), http.StatusSeeOther)
}

// cardRecord is the card's record as the chat view needs it: the record's
// contacts' numbers, and the customers the connector linked to it (an
// Instagram customer has no number; a lead made by the connector is
// linked even when its contact's number was changed in amoCRM).
func (s *Service) cardRecord(ctx context.Context, in *store.Integration, ss *crm.Session) chatview.Record {
	kind, id, _ := strings.Cut(SessionEntity(ss), ":")
	var linked []string
	switch kind {
	case "lead":
		locals, err := s.store.LocalIDsByRemote(ctx, in.ID, linkLead, id)
		if err != nil {
			s.log.Error("amocrm card: customers of a lead", "integration_id", in.ID, "lead", id, "err", err)
		}
		for _, l := range locals {
			// binding id ":" contact id
			if _, c, ok := strings.Cut(l, ":"); ok {
				linked = append(linked, c)
			}
		}
	case "contact":
		ids, err := s.store.LocalIDsByRemote(ctx, in.ID, linkContact, id)
		if err != nil {
			s.log.Error("amocrm card: customers of a contact", "integration_id", in.ID, "contact", id, "err", err)
		}
		linked = ids
	}
	phones, err := s.cardPhones(ctx, in, kind, id)
	if err != nil {
		// The record's numbers are unknown; a linked customer may still
		// be shown.
		s.log.Warn("amocrm card: record phones", "integration_id", in.ID, "entity", kind+":"+id, "err", err)
	}
	return chatview.Record{Integration: in, Session: ss, Lang: ss.Lang, Phones: phones, Contacts: s.chat.Customers(ctx, in, phones, linked),
		ChannelNames: s.bindingNames(ctx, in), RightsBy: cardTexts[pageLang(ss.Lang)]["rights_by"]}
}

// bindingNames are the channels' names in this account (a binding's own
// name), by channel id. A failed lookup keeps the channels' own names.
func (s *Service) bindingNames(ctx context.Context, in *store.Integration) map[string]string {
	bs, err := s.store.ListBindings(ctx, in.ID)
	if err != nil {
		s.log.Warn("amocrm card: binding names", "integration_id", in.ID, "err", err)
	}
	out := map[string]string{}
	for _, b := range bs {
		out[b.ChannelID] = b.Name
	}
	return out
}

// cardPhones reads the numbers of the record's contacts (a lead's through
// its first few contacts), as the workspace's people write them, in E.164.
func (s *Service) cardPhones(ctx context.Context, in *store.Integration, kind, id string) ([]string, error) {
	n, err := strconv.Atoi(id)
	if err != nil || !routing.Live(in) {
		// An account that must authorise again answers no call; its
		// linked customers still show.
		return nil, err
	}
	ws, err := s.store.GetWorkspace(ctx, store.All, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	api := s.API(in)
	contacts := []int{n}
	if kind == "lead" {
		l, found, err := api.GetLead(ctx, n, true)
		if err != nil || !found {
			return nil, err
		}
		contacts = contacts[:0]
		for _, c := range l.Embedded.Contacts {
			if len(contacts) < cardMaxContacts {
				contacts = append(contacts, c.ID)
			}
		}
	}
	numbers := phone.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion}
	var out []string
	seen := map[string]bool{}
	for _, cid := range contacts {
		c, found, err := api.GetContact(ctx, cid, false)
		if err != nil {
			return out, err
		}
		if !found {
			continue
		}
		for _, v := range c.Values("PHONE") {
			if e164, err := phone.Normalize(v, numbers); err == nil && !seen[e164] {
				seen[e164] = true
				out = append(out, e164)
			}
		}
	}
	return out, nil
}

// cardHeaders let only the account's own pages frame the window, and keep
// its address (which carries the session) out of Referer headers.
func (s *Service) cardHeaders(w http.ResponseWriter, in *store.Integration) {
	ancestors := cardAncestors
	if in != nil {
		if base, err := s.hosts().AccountBase(in.Domain); err == nil {
			ancestors = base
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "frame-ancestors "+ancestors+"; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// cardError answers a refusal as a small page in the window's language,
// with the status of its kind (401 for a forged, replayed or expired
// session, 403 for a send the access rights refuse).
func (s *Service) cardError(w http.ResponseWriter, r *http.Request, in *store.Integration, ss *crm.Session, err error) {
	fe, status, ok := httperr.Of(err)
	if !ok {
		s.log.Error("amocrm card", "path", r.URL.Path, "err", err)
	}
	lang := pageLang(r.URL.Query().Get("lang"))
	if ss != nil && ss.Lang != "" {
		lang = ss.Lang
	}
	text, known := cardTexts[lang][fe.Code]
	if !known {
		if text, known = chatview.ErrText(lang, fe.Code); !known {
			text = chatview.Texts(lang)["err_internal"]
		}
	}
	s.cardHeaders(w, in)
	w.WriteHeader(status)
	if err := cardTemplates.ExecuteTemplate(w, "amo_card_error", struct{ Lang, Text string }{lang, text}); err != nil {
		return // the status is out; nothing more can be said
	}
}
