package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
)

// The widget's pages (the card window and the settings page) are iframes
// of the gateway. amoCRM proves who opens them only to the widget's own
// script, with a disposable JWT on an $authorizedAjax call; the iframe's
// address cannot carry that token (it is single use and would end up in
// histories). So the script trades the JWT for a ticket: random, single
// use, two minutes long, and naming only what the JWT proved. The page
// that takes the ticket turns it into a signed page session (crm.Session),
// which its own forms and links carry from then on.

// TicketTTL is how long a ticket waits for its iframe to load.
const TicketTTL = 2 * time.Minute

// Ticket purposes: which page a ticket opens.
const (
	PurposeCard     = "card"
	PurposeSettings = "settings"
)

// Provider names of the single-use values kept in the OAuth states table:
// tickets, and the jti of every widget token seen (amoCRM's disposable
// tokens are single use).
const (
	ticketProvider = "amocrm.ticket"
	jtiProvider    = "amocrm.jti"
)

// entityRef is a card's record as a page session names it.
var entityRef = regexp.MustCompile(`^(lead|contact):[0-9]{1,12}$`)

// ticketClaims is what a ticket stands for: the account's integration,
// the amoCRM user, whether amoCRM calls them an account admin, the page.
type ticketClaims struct {
	IntegrationID string `json:"i"`
	UserID        string `json:"u"`
	Admin         bool   `json:"a"`
	Purpose       string `json:"p"`
}

// widgetVerifier checks disposable tokens for this gateway: the audience
// is the scheme and host of the integration's Redirect URI, as amoCRM
// signs it.
func (s *Service) widgetVerifier() WidgetVerifier {
	aud := ""
	if u, err := url.Parse(s.cfg.RedirectURI); err == nil && u.Host != "" {
		aud = u.Scheme + "://" + u.Host
	}
	return WidgetVerifier{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, Audience: aud, Hosts: s.hosts(),
		Leeway: 30 * time.Second, Now: s.now}
}

// now is the service's clock (the simulator's in tests).
func (s *Service) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// corsOrigin returns the Origin a widget call may be answered to: an
// account host the policy allows, over https (or the test base's own
// scheme). Anything else gets no CORS headers, so a browser keeps the
// answer from the calling page.
func (s *Service) corsOrigin(r *http.Request) string {
	o := r.Header.Get("Origin")
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" {
		return ""
	}
	base, err := s.hosts().AccountBase(u.Host)
	if err != nil || !strings.HasPrefix(base, u.Scheme+"://") {
		return ""
	}
	return o
}

// ServeWidgetTicketPreflight answers the browser's CORS preflight of the
// ticket call: $authorizedAjax adds X-Auth-Token, a non-simple header.
func (s *Service) ServeWidgetTicketPreflight(w http.ResponseWriter, r *http.Request) {
	if o := s.corsOrigin(r); o != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "X-Auth-Token, Content-Type, X-Requested-With")
		h.Set("Access-Control-Max-Age", "600")
		h.Add("Vary", "Origin")
	}
	w.WriteHeader(http.StatusNoContent)
}

// widgetCall opens a call the widget's script makes with $authorizedAjax
// (the ticket, the digital pipeline key): the CORS grant for the account's
// own pages, a small form body, the disposable token spent, and the
// connected account it names. It answered the call when it returns false.
func (s *Service) widgetCall(w http.ResponseWriter, r *http.Request) (*WidgetClaims, *store.Integration, bool) {
	if o := s.corsOrigin(r); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Add("Vary", "Origin")
	}
	if err := s.configured(); err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, fault.New(fault.Malformed, "form_invalid", "the widget's request is not a small form"))
		return nil, nil, false
	}
	claims, err := s.verifyWidgetToken(r.Context(), r.Header.Get("X-Auth-Token"))
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	in, err := s.store.IntegrationByExternal(r.Context(), Type, strconv.Itoa(claims.AccountID))
	if errors.Is(err, store.ErrNotFound) || err == nil && in.State == store.IntegrationUninstalled {
		s.fail(w, r, fault.New(fault.NotFound, "account_unknown", "this amoCRM account is not connected to Switchboard; install the widget again"))
		return nil, nil, false
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	return claims, in, true
}

// writeWidgetJSON answers a widget call; the answer is never cached.
func (s *Service) writeWidgetJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Warn("amocrm: write a widget answer", "err", err)
	}
}

// ServeWidgetTicket is POST /amocrm/widget/ticket: the widget's disposable
// token (X-Auth-Token) for a one-time ticket to the card window or the
// settings page. A forged, expired, replayed or foreign token is a 401 and
// reveals nothing; an account that is not connected is a 404.
func (s *Service) ServeWidgetTicket(w http.ResponseWriter, r *http.Request) {
	claims, in, ok := s.widgetCall(w, r)
	if !ok {
		return
	}
	purpose := r.PostForm.Get("purpose")
	if purpose != PurposeCard && purpose != PurposeSettings {
		s.fail(w, r, &fault.Error{Kind: fault.Invalid, Code: "purpose_invalid", Field: "purpose", Message: "purpose is card or settings"})
		return
	}
	raw, err := json.Marshal(ticketClaims{IntegrationID: in.ID, UserID: strconv.Itoa(claims.UserID), Admin: claims.IsAdmin, Purpose: purpose})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.store.NewOAuthState(r.Context(), in.WorkspaceID, ticketProvider, string(raw), TicketTTL)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeWidgetJSON(w, map[string]any{"ticket": t, "expires_in": int(TicketTTL / time.Second)})
}

// verifyWidgetToken checks a disposable token and spends its jti.
func (s *Service) verifyWidgetToken(ctx context.Context, token string) (*WidgetClaims, error) {
	refused := fault.New(fault.Unauthorized, "widget_token_invalid", "the widget's token is missing, forged, expired or already used; reopen the page in amoCRM")
	if token == "" {
		return nil, refused
	}
	claims, err := s.widgetVerifier().Verify(token)
	if err != nil {
		s.log.Warn("amocrm: widget token refused", "err", err)
		return nil, refused
	}
	fresh, err := s.store.RememberOnce(ctx, jtiProvider, claims.Jti, time.Unix(claims.Exp, 0).Add(time.Minute))
	if err != nil {
		return nil, err
	}
	if !fresh {
		s.log.Warn("amocrm: widget token replayed", "account_id", claims.AccountID)
		return nil, refused
	}
	return claims, nil
}

// PageSession opens the session of a request to one of the widget's
// pages: a ticket of the page's purpose (the first load, spent by it), or
// the signed session the page's own forms and links carry ("sess"; a POST
// reads it from its body only, so a link cannot make a change). entity is
// the card's record for a ticket of the card ("lead:123"), "" otherwise.
// A session of another page is refused: a card's session does not open
// the settings.
func (s *Service) PageSession(r *http.Request, purpose, lang, entity string) (*store.Integration, *crm.Session, error) {
	refused := fault.New(fault.Unauthorized, "page_session_invalid", "the page's session is missing, used or expired; reopen it in amoCRM")
	var ss *crm.Session
	if t := r.URL.Query().Get("ticket"); t != "" && r.Method == http.MethodGet {
		st, err := s.store.ConsumeOAuthState(r.Context(), t, ticketProvider)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, refused
		}
		if err != nil {
			return nil, nil, err
		}
		var c ticketClaims
		if err := json.Unmarshal([]byte(st.Domain), &c); err != nil || c.Purpose != purpose {
			return nil, nil, refused
		}
		if purpose == PurposeCard && !entityRef.MatchString(entity) {
			return nil, nil, fault.New(fault.Malformed, "entity_invalid", "the card window needs entity (leads or contacts) and the record's id")
		}
		if purpose != PurposeCard {
			entity = ""
		}
		ss = &crm.Session{IntegrationID: c.IntegrationID, UserID: c.UserID, Admin: c.Admin, Lang: pageLang(lang),
			Entity: purpose + "|" + entity, Auth: s.now().Unix()}
	} else {
		v := r.URL.Query().Get("sess")
		if r.Method == http.MethodPost {
			v = r.PostFormValue("sess")
		}
		opened, err := s.sessions.Open(v)
		if err != nil {
			if errors.Is(err, crm.ErrSessionExpired) {
				return nil, opened, fault.New(fault.Unauthorized, "page_session_expired", "the page has been open too long; reopen it in amoCRM")
			}
			return nil, nil, refused
		}
		if p, _, _ := strings.Cut(opened.Entity, "|"); p != purpose {
			return nil, nil, refused
		}
		ss = opened
	}
	in, err := s.store.GetIntegration(r.Context(), store.All, ss.IntegrationID)
	if err != nil || in.Type != Type || in.State == store.IntegrationUninstalled {
		return nil, ss, fault.New(fault.NotFound, "account_unknown", "this amoCRM account is not connected to Switchboard; install the widget again")
	}
	return in, ss, nil
}

// SessionEntity is the card's record of a page session ("lead:123"), ""
// for the settings page.
func SessionEntity(ss *crm.Session) string {
	_, e, _ := strings.Cut(ss.Entity, "|")
	return e
}

// SignSession renews a page session for the page's forms and links.
func (s *Service) SignSession(ss *crm.Session) string { return s.sessions.Sign(*ss) }

// pageLang is the page's language: Russian unless amoCRM's says English.
func pageLang(l string) string {
	if strings.HasPrefix(strings.ToLower(l), "en") {
		return "en"
	}
	return "ru"
}

// cardEntity turns the widget's card address (entity=leads|contacts, id)
// into a session's record; "" when either is not one.
func cardEntity(entity, id string) string {
	kind := map[string]string{"leads": "lead", "contacts": "contact"}[entity]
	ref := fmt.Sprintf("%s:%s", kind, id)
	if !entityRef.MatchString(ref) {
		return ""
	}
	return ref
}
