package bitrix24

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/web"
)

var pageTemplates = template.Must(template.ParseFS(web.Templates, "templates/b24_*.html"))

// session is who opened a page inside Bitrix24, proven once by the
// AUTH_ID Bitrix24 posted and carried on as a signed, expiring value (a
// third-party cookie in an iframe is not dependable).
type session struct {
	IntegrationID string `json:"i"`
	UserID        string `json:"u"`
	Admin         bool   `json:"a"`
	Lang          string `json:"l"`
	// Entity is the CRM record a card tab was opened for ("deal:8061").
	Entity  string `json:"e,omitempty"`
	Expires int64  `json:"x"`
}

const sessionTTL = 2 * time.Hour

func (s *Service) signSession(ss session) string {
	ss.Expires = time.Now().Add(sessionTTL).Unix()
	raw, _ := json.Marshal(ss)
	body := base64.RawURLEncoding.EncodeToString(raw)
	m := hmac.New(sha256.New, s.cfg.SessionKey)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Service) openSession(v string) (*session, error) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok {
		return nil, errors.New("malformed session")
	}
	m := hmac.New(sha256.New, s.cfg.SessionKey)
	m.Write([]byte(body))
	want := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return nil, errors.New("bad session signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, err
	}
	var ss session
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, err
	}
	if time.Now().Unix() > ss.Expires {
		return nil, errors.New("session expired")
	}
	return &ss, nil
}

var errNotAuthenticated = &HTTPError{http.StatusUnauthorized, "not_authenticated", "open this page from Bitrix24"}

// verifyFrame proves an iframe POST: the portal must be ours, and the
// AUTH_ID must be a live token of that portal, which we check by asking
// the portal's stored REST endpoint (never the form's DOMAIN) who it is.
func (s *Service) verifyFrame(r *http.Request, form url.Values) (*store.Integration, *session, error) {
	memberID := strings.ToLower(form.Get("member_id"))
	authID := form.Get("AUTH_ID")
	if !memberIDPattern.MatchString(memberID) || authID == "" {
		return nil, nil, errNotAuthenticated
	}
	in, err := s.store.IntegrationByExternal(r.Context(), Type, memberID)
	if err != nil || in.State == store.IntegrationUninstalled {
		return nil, nil, &HTTPError{http.StatusUnauthorized, "unknown_portal", "Switchboard is not installed on this portal"}
	}
	var user struct {
		ID json.RawMessage `json:"ID"`
	}
	if err := s.callAsUser(r.Context(), in, authID, "user.current", nil, &user); err != nil {
		return nil, nil, errNotAuthenticated
	}
	var admin bool
	s.callAsUser(r.Context(), in, authID, "user.admin", nil, &admin)
	lang := cmp.Or(r.URL.Query().Get("LANG"), form.Get("LANG"), in.Language, "ru")
	return in, &session{IntegrationID: in.ID, UserID: strings.Trim(string(user.ID), `"`), Admin: admin, Lang: lang}, nil
}

// callAsUser calls REST with a user's token (from an iframe), on the
// portal's stored endpoint.
func (s *Service) callAsUser(ctx context.Context, in *store.Integration, token, method string, params map[string]any, out any) error {
	body, _ := json.Marshal(params)
	if params == nil {
		body = []byte("{}")
	}
	u := in.ClientEndpoint + method + ".json?auth=" + url.QueryEscape(token)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("bitrix24: %s as user: request failed", method)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bitrix24: %s as user: http %d", method, resp.StatusCode)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("bitrix24: %s as user: %w", method, err)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Result, out)
}

// pageEntry opens a page: a POST from Bitrix24 is proven by its AUTH_ID
// (form is returned for the placement's options), a GET carries a session.
func (s *Service) pageEntry(w http.ResponseWriter, r *http.Request) (*store.Integration, *session, url.Values, error) {
	if r.Method != http.MethodPost {
		in, ss, err := s.sessionFrom(r)
		return in, ss, nil, err
	}
	form, err := readForm(w, r)
	if err != nil {
		return nil, nil, nil, err
	}
	in, ss, err := s.verifyFrame(r, form)
	return in, ss, form, err
}

func (s *Service) sessionFrom(r *http.Request) (*store.Integration, *session, error) {
	ss, err := s.openSession(cmp.Or(r.FormValue("sess"), r.URL.Query().Get("sess")))
	if err != nil {
		return nil, nil, &HTTPError{http.StatusUnauthorized, "session_invalid", "the page session is invalid or expired; reopen it from Bitrix24"}
	}
	in, err := s.store.GetIntegration(r.Context(), store.All, ss.IntegrationID)
	if err != nil || in.State == store.IntegrationUninstalled {
		return nil, nil, errNotAuthenticated
	}
	return in, ss, nil
}

// pageTexts are the words the pages use, per language.
var pageTexts = map[string]map[string]string{
	"ru": {"portal": "Портал", "channels": "Каналы", "no_channels": "В рабочем пространстве портала пока нет каналов WhatsApp или Instagram.",
		"channel": "Канал", "state": "Состояние", "binding": "Куда идут сообщения", "mode_openlines": "Открытая линия", "mode_crm": "Сразу в CRM",
		"mode_none": "Никуда", "line": "Линия", "entity": "Создавать", "lead": "лид", "deal": "сделку", "category": "Воронка", "stage": "Стадия",
		"operator_name": "Подписывать именем оператора", "save": "Сохранить", "refresh": "Обновить", "saved": "Сохранено.", "active": "работает",
		"needs_reauth": "нужна повторная авторизация", "uninstalled": "удалено",
		"handlers_mismatch": "ответы операторов не доходят: обработчики событий портала указывают не на Switchboard", "conversation": "Переписка",
		"no_messages": "Сообщений с этим клиентом пока нет.", "write": "Написать клиенту", "no_target": "У клиента нет номера телефона или активного канала.",
		"text": "Текст сообщения", "template": "Шаблон", "language": "Язык", "params": "Параметры через запятую",
		"template_hint":       "Если клиент не писал больше 24 часов, WhatsApp примет только утверждённый шаблон.",
		"window_closed_short": "окно 24 ч закрыто", "send": "Отправить",
		"status_queued": "в очереди", "status_sent": "отправлено", "status_delivered": "доставлено", "status_read": "прочитано",
		"status_failed": "не доставлено", "channel_active": "работает", "channel_error": "ошибка", "channel_disabled": "отключён", "sent": "Сообщение поставлено в очередь на отправку.", "line_any": "—"},
	"en": {"portal": "Portal", "channels": "Channels", "no_channels": "The portal's workspace has no WhatsApp or Instagram channels yet.",
		"channel": "Channel", "state": "State", "binding": "Where messages go", "mode_openlines": "Open Line", "mode_crm": "Straight into CRM",
		"mode_none": "Nowhere", "line": "Line", "entity": "Create", "lead": "a lead", "deal": "a deal", "category": "Pipeline", "stage": "Stage",
		"operator_name": "Sign with the operator's name", "save": "Save", "refresh": "Refresh", "saved": "Saved.", "active": "working",
		"needs_reauth": "needs re-authorisation", "uninstalled": "uninstalled",
		"handlers_mismatch": "operators' replies cannot arrive: the portal's event handlers do not point at Switchboard", "conversation": "Conversation",
		"no_messages": "No messages with this customer yet.", "write": "Write to the customer", "no_target": "The customer has no phone number or active channel.",
		"text": "Message text", "template": "Template", "language": "Language", "params": "Parameters, comma-separated",
		"template_hint":       "If the customer has not written for over 24 hours, WhatsApp takes only an approved template.",
		"window_closed_short": "24 h window closed", "send": "Send",
		"status_queued": "queued", "status_sent": "sent", "status_delivered": "delivered", "status_read": "read",
		"status_failed": "not delivered", "channel_active": "working", "channel_error": "error", "channel_disabled": "disabled", "sent": "The message is queued for sending.", "line_any": "—"},
}

func textsFor(lang string) map[string]string {
	if strings.EqualFold(lang, "en") || (lang != "" && !strings.EqualFold(lang, "ru") && !strings.EqualFold(lang, "kz") && !strings.EqualFold(lang, "by") && !strings.EqualFold(lang, "ua")) {
		return pageTexts["en"]
	}
	return pageTexts["ru"]
}

func renderTemplate(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "frame-ancestors https://*.bitrix24.ru https://*.bitrix24.com https://*.bitrix24.kz https://*.bitrix24.by https://*.bitrix24.de https://*.bitrix24.eu")
	w.Header().Set("Cache-Control", "no-store")
	if err := pageTemplates.ExecuteTemplate(w, name, data); err != nil {
		fmt.Fprint(w, "page error")
	}
}

func writePageError(w http.ResponseWriter, r *http.Request, err error) {
	var he *HTTPError
	if !errors.As(err, &he) {
		he = &HTTPError{http.StatusInternalServerError, "internal", "internal error"}
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeError(w, he)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(he.Status)
	messagePage.Execute(w, pageData{Lang: "ru", Text: he.Message})
}

// ---- app page ----

type appChannel struct {
	ID, Name, Type, Address, State             string
	Mode, ModeText, LineID, Entity, CategoryID string
	StageID                                    string
	OperatorName                               bool
}

type appLine struct{ ID, Name string }

type appPage struct {
	Lang, Domain, State, StateText, StateReason string
	Admin                                       bool
	Sess, Notice                                string
	NoticeErr                                   bool
	T                                           map[string]string
	Channels                                    []appChannel
	Lines                                       []appLine
}

// ServeApp handles the app page: POST from Bitrix24 (AUTH_ID), or GET with
// a session after a save.
func (s *Service) ServeApp(w http.ResponseWriter, r *http.Request) {
	in, ss, _, err := s.pageEntry(w, r)
	if err != nil {
		writePageError(w, r, err)
		return
	}
	notice := ""
	if r.URL.Query().Get("saved") == "1" {
		notice = textsFor(ss.Lang)["saved"]
	}
	s.renderApp(w, r, in, ss, notice, r.URL.Query().Get("error"))
}

func (s *Service) renderApp(w http.ResponseWriter, r *http.Request, in *store.Integration, ss *session, notice, errText string) {
	ctx := r.Context()
	t := textsFor(ss.Lang)
	p := appPage{Lang: ss.Lang, Domain: in.Domain, State: in.State, StateText: cmp.Or(t[in.State], in.State), StateReason: in.StateReason,
		Admin: ss.Admin, Sess: s.signSession(*ss), Notice: cmp.Or(errText, notice), NoticeErr: errText != "", T: t}
	chs, _ := s.store.ListChannels(ctx, store.Scope{WorkspaceID: in.WorkspaceID})
	bs, _ := s.store.ListBindings(ctx, in.ID)
	byChannel := map[string]store.ChannelBinding{}
	for _, b := range bs {
		byChannel[b.ChannelID] = b
	}
	for _, ch := range chs {
		if ch.State == store.ChannelDisabled {
			continue
		}
		c := appChannel{ID: ch.ID, Name: ch.Name, Type: ch.Type, Address: cmp.Or(ch.DisplayPhone, ch.AccountID),
			State: cmp.Or(t["channel_"+ch.State], ch.State)}
		if ch.StateReason != "" {
			c.State += ": " + ch.StateReason
		}
		if b, ok := byChannel[ch.ID]; ok {
			c.Mode, c.LineID, c.Entity, c.CategoryID, c.StageID = b.Mode, b.LineID, b.Entity, b.CategoryID, b.StageID
			c.OperatorName = bindingSettings(&b).OperatorName
			if b.Mode == ModeOpenLines {
				c.ModeText = t["mode_openlines"] + " #" + b.LineID
			} else {
				c.ModeText = t["mode_crm"] + ": " + t[b.Entity]
			}
		}
		p.Channels = append(p.Channels, c)
	}
	if ss.Admin && workable(in) {
		var lines []struct {
			ID       json.RawMessage `json:"ID"`
			LineName string          `json:"LINE_NAME"`
		}
		if err := s.client.Call(ctx, in.ID, "imopenlines.config.list.get", map[string]any{"PARAMS": map[string]any{"select": []string{"ID", "LINE_NAME"}}}, &lines); err == nil {
			for _, l := range lines {
				id := strings.Trim(string(l.ID), `"`)
				p.Lines = append(p.Lines, appLine{ID: id, Name: "#" + id + " " + l.LineName})
			}
		}
	}
	renderTemplate(w, "b24_app.html", p)
}

// ServeAppBind saves a channel's binding from the app page, through the
// same code as the admin API.
func (s *Service) ServeAppBind(w http.ResponseWriter, r *http.Request) {
	if _, err := readForm(w, r); err != nil {
		writePageError(w, r, err)
		return
	}
	in, ss, err := s.sessionFrom(r)
	if err != nil {
		writePageError(w, r, err)
		return
	}
	if !ss.Admin {
		writePageError(w, r, &HTTPError{http.StatusForbidden, "admin_only", "only a portal administrator can change where messages go"})
		return
	}
	scope := store.Scope{WorkspaceID: in.WorkspaceID}
	chID := r.FormValue("channel_id")
	mode := r.FormValue("mode")
	if mode == "none" {
		err = s.Unbind(r.Context(), scope, in.ID, chID)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
	} else {
		op := r.FormValue("operator_name") == "1"
		req := BindRequest{Mode: mode, OperatorName: &op}
		if mode == ModeOpenLines {
			req.LineID = r.FormValue("line_id")
		} else {
			req.Entity, req.CategoryID, req.StageID = r.FormValue("entity"), r.FormValue("category_id"), r.FormValue("stage_id")
			if req.Entity != "deal" {
				req.CategoryID = ""
			}
		}
		_, err = s.Bind(r.Context(), scope, in.ID, chID, req)
	}
	q := url.Values{"sess": {s.signSession(*ss)}}
	var he *HTTPError
	switch {
	case err == nil:
		q.Set("saved", "1")
	case errors.As(err, &he):
		q.Set("error", he.Message)
	default:
		q.Set("error", "internal error")
		s.log.Error("bitrix24 app page bind", "integration_id", in.ID, "err", err)
	}
	http.Redirect(w, r, "/bitrix24/app?"+q.Encode(), http.StatusSeeOther)
}
