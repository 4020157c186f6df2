package bitrix24

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web/httperr"
	"github.com/switchboard/switchboard/web"
)

var pageTemplates = template.Must(template.ParseFS(web.Templates, "templates/b24_*.html", "templates/chat_*.html"))

var errNotAuthenticated = fault.New(fault.Unauthorized, "not_authenticated", "open this page from Bitrix24")

// verifyFrame proves an iframe POST: the portal must be ours, and the
// AUTH_ID must be a live token of that portal, which we check by asking
// the portal's stored REST endpoint (never the form's DOMAIN) who it is.
func (s *Service) verifyFrame(r *http.Request, form url.Values) (*store.Integration, *crm.Session, error) {
	memberID := strings.ToLower(form.Get("member_id"))
	authID := form.Get("AUTH_ID")
	if !memberIDPattern.MatchString(memberID) || authID == "" {
		return nil, nil, errNotAuthenticated
	}
	in, err := s.store.IntegrationByExternal(r.Context(), Type, memberID)
	if err != nil || in.State == store.IntegrationUninstalled {
		return nil, nil, fault.New(fault.Unauthorized, "unknown_portal", "Switchboard is not installed on this portal")
	}
	var user struct {
		ID json.RawMessage `json:"ID"`
	}
	if err := s.callAsUser(r.Context(), in, authID, "user.current", nil, &user); err != nil {
		return nil, nil, errNotAuthenticated
	}
	var admin bool
	if err := s.callAsUser(r.Context(), in, authID, "user.admin", nil, &admin); err != nil {
		// The user is proven; only the admin rights are unknown, so the
		// page opens read-only.
		s.log.Warn("bitrix24 page: user.admin", "integration_id", in.ID, "err", err)
		admin = false
	}
	lang := cmp.Or(r.URL.Query().Get("LANG"), form.Get("LANG"), in.Language, "ru")
	return in, &crm.Session{IntegrationID: in.ID, UserID: strings.Trim(string(user.ID), `"`), Admin: admin, Lang: lang, Auth: time.Now().Unix()}, nil
}

// callAsUser calls REST with a user's token (from an iframe), on the
// portal's stored endpoint.
func (s *Service) callAsUser(ctx context.Context, in *store.Integration, token, method string, params map[string]any, out any) error {
	// The portal counts a user's calls in the same bucket as the app's:
	// they take a slot of the portal's limiter too, or a busy card tab
	// would push the queue's calls over the portal's limit.
	if err := s.client.wait(ctx, in.ID); err != nil {
		return fmt.Errorf("bitrix24: %s as user: %w", method, err)
	}
	body := []byte("{}")
	if params != nil {
		var err error
		if body, err = json.Marshal(params); err != nil {
			return fmt.Errorf("bitrix24: %s as user: %w", method, err)
		}
	}
	u := in.ClientEndpoint + method + ".json?auth=" + url.QueryEscape(token)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		// The message names the method only: u carries the user's token.
		return fmt.Errorf("bitrix24: %s as user: bad endpoint", method)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("bitrix24: %s as user: request failed", method)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("bitrix24: %s as user: read answer: %w", method, err)
	}
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
// The returned session is non-nil whenever its language is known, even
// with an error, so that the refusal is worded in it.
func (s *Service) pageEntry(w http.ResponseWriter, r *http.Request) (*store.Integration, *crm.Session, url.Values, error) {
	if r.Method != http.MethodPost {
		in, ss, err := s.sessionFrom(r)
		return in, ss, nil, err
	}
	if _, err := readForm(w, r); err != nil {
		return nil, nil, nil, err
	}
	// Bitrix24 posts the tokens in the body; a token in a URL ends up in
	// logs and histories, so the query string is not read for them.
	form := r.PostForm
	in, ss, err := s.verifyFrame(r, form)
	return in, ss, form, err
}

// sessionFrom opens the page session of a request: from the body of a
// POST (a form of the page), from the query string of a GET (the page's
// own links and redirects). A POST never takes it, or anything else,
// from its query string, so a link cannot make a change.
func (s *Service) sessionFrom(r *http.Request) (*store.Integration, *crm.Session, error) {
	v := r.URL.Query().Get("sess")
	if r.Method == http.MethodPost {
		v = r.PostForm.Get("sess")
	}
	ss, err := s.sessions.Open(v)
	if errors.Is(err, crm.ErrSessionExpired) {
		return nil, ss, fault.New(fault.Unauthorized, "session_expired", "the page session has expired; reopen the app from Bitrix24")
	}
	if err != nil {
		return nil, nil, fault.New(fault.Unauthorized, "session_invalid", "the page session is invalid; reopen the app from Bitrix24")
	}
	in, err := s.store.GetIntegration(r.Context(), store.All, ss.IntegrationID)
	if err != nil || in.State == store.IntegrationUninstalled {
		return nil, ss, errNotAuthenticated
	}
	return in, ss, nil
}

// pageTexts are the words the pages use, per language. Refusals are
// "err_" + the error's code; every code a page can meet has both.
var pageTexts = map[string]map[string]string{
	"ru": {"portal": "Портал", "channels": "Каналы", "no_channels": "В рабочем пространстве портала пока нет каналов WhatsApp или Instagram.",
		"channel": "Канал", "state": "Состояние", "binding": "Куда идут сообщения", "mode_openlines": "Открытая линия", "mode_crm": "Сразу в CRM",
		"mode_none": "Никуда", "line": "Линия", "entity": "Создавать", "lead": "лид", "deal": "сделку", "category": "Воронка", "stage": "Стадия",
		"bound_lead": "лид", "bound_deal": "сделка",
		"stage_first": "первая стадия", "lead_statuses": "Статусы лида", "pipeline_of": "Воронка",
		"line_id_hint": "номер линии", "category_id_hint": "номер воронки", "stage_id_hint": "код стадии",
		"operator_name": "Подписывать именем оператора", "save": "Сохранить", "refresh": "Обновить", "saved": "Сохранено.", "active": "работает",
		"needs_reauth": "нужна повторная авторизация", "uninstalled": "удалено",
		"handlers_mismatch":      "ответы операторов не доходят: обработчики событий портала указывают не на Switchboard",
		"handlers_mismatch_hint": "Портал должен отправлять события на %s. Проверьте SWITCHBOARD_PUBLIC_URL шлюза и перезапустите его: обработчики исправятся сами.",
		"needs_reauth_hint":      "Портал отозвал доступ приложения. Откройте приложение заново или переустановите его.", "channel_active": "работает", "channel_error": "ошибка", "channel_disabled": "отключён", "line_any": "—",
		"choices_unavailable":            "Битрикс24 не отдал список линий, воронок или стадий; введите их номера вручную или обновите страницу позже.",
		"err_not_authenticated":          "Откройте эту страницу из Битрикс24.",
		"err_unknown_portal":             "Switchboard не установлен на этом портале.",
		"err_session_invalid":            "Сессия страницы недействительна. Откройте приложение заново из Битрикс24.",
		"err_session_expired":            "Сессия страницы истекла. Откройте приложение заново из Битрикс24.",
		"err_admin_only":                 "Менять, куда идут сообщения, может только администратор портала.",
		"err_placement_invalid":          "Эта страница открывается вкладкой в карточке CRM.",
		"err_body_too_large":             "Слишком большой запрос.",
		"err_form_invalid":               "Форма пришла повреждённой. Обновите страницу и попробуйте снова.",
		"err_internal":                   "Внутренняя ошибка. Попробуйте позже.",
		"err_integration_type":           "Это не интеграция с Битрикс24.",
		"err_channel_not_found":          "Такого канала нет в рабочем пространстве портала.",
		"err_channel_in_other_workspace": "Этот канал в другом рабочем пространстве; попросите оператора Switchboard перенести его.",
		"err_mode_invalid":               "Выберите, куда идут сообщения: открытая линия, CRM или никуда.",
		"err_line_id_invalid":            "Выберите открытую линию.",
		"err_line_unknown":               "Такой открытой линии на портале нет.",
		"err_field_not_allowed":          "Поля линии и CRM нельзя задавать одновременно.",
		"err_entity_invalid":             "Выберите, что создавать: лид или сделку.",
		"err_category_id_invalid":        "Номер воронки — целое число.",
		"err_category_unknown":           "Такой воронки на портале нет.",
		"err_stage_id_invalid":           "Код стадии может содержать только латинские буквы, цифры, «_» и «:».",
		"err_stage_unknown":              "Эта стадия не относится к выбранной воронке.",
		"err_channel_disabled":           "Канал отключён.",
		"err_channel_error":              "Канал в состоянии ошибки; проверьте его настройки.",
	},
	"en": {"portal": "Portal", "channels": "Channels", "no_channels": "The portal's workspace has no WhatsApp or Instagram channels yet.",
		"channel": "Channel", "state": "State", "binding": "Where messages go", "mode_openlines": "Open Line", "mode_crm": "Straight into CRM",
		"mode_none": "Nowhere", "line": "Line", "entity": "Create", "lead": "a lead", "deal": "a deal", "category": "Pipeline", "stage": "Stage",
		"bound_lead": "lead", "bound_deal": "deal",
		"stage_first": "first stage", "lead_statuses": "Lead statuses", "pipeline_of": "Pipeline",
		"line_id_hint": "line number", "category_id_hint": "pipeline number", "stage_id_hint": "stage code",
		"operator_name": "Sign with the operator's name", "save": "Save", "refresh": "Refresh", "saved": "Saved.", "active": "working",
		"needs_reauth": "needs re-authorisation", "uninstalled": "uninstalled",
		"handlers_mismatch":      "operators' replies cannot arrive: the portal's event handlers do not point at Switchboard",
		"handlers_mismatch_hint": "The portal must send events to %s. Check the gateway's SWITCHBOARD_PUBLIC_URL and restart it: the handlers are then fixed by themselves.",
		"needs_reauth_hint":      "The portal withdrew the app's access. Open the app again or reinstall it.", "channel_active": "working", "channel_error": "error", "channel_disabled": "disabled", "line_any": "—",
		"choices_unavailable":            "Bitrix24 did not give the list of lines, pipelines or stages; type their numbers or refresh the page later.",
		"err_not_authenticated":          "Open this page from Bitrix24.",
		"err_unknown_portal":             "Switchboard is not installed on this portal.",
		"err_session_invalid":            "The page session is not valid. Reopen the app from Bitrix24.",
		"err_session_expired":            "The page session has expired. Reopen the app from Bitrix24.",
		"err_admin_only":                 "Only a portal administrator can change where messages go.",
		"err_placement_invalid":          "This page opens as a tab in a CRM card.",
		"err_body_too_large":             "The request is too large.",
		"err_form_invalid":               "The form arrived damaged. Refresh the page and try again.",
		"err_internal":                   "Internal error. Try again later.",
		"err_integration_type":           "This is not a Bitrix24 integration.",
		"err_channel_not_found":          "There is no such channel in the portal's workspace.",
		"err_channel_in_other_workspace": "This channel is in another workspace; ask the Switchboard operator to move it.",
		"err_mode_invalid":               "Choose where messages go: an Open Line, the CRM or nowhere.",
		"err_line_id_invalid":            "Choose an Open Line.",
		"err_line_unknown":               "The portal has no such Open Line.",
		"err_field_not_allowed":          "Line and CRM fields cannot be set together.",
		"err_entity_invalid":             "Choose what to create: a lead or a deal.",
		"err_category_id_invalid":        "A pipeline number is a whole number.",
		"err_category_unknown":           "The portal has no such pipeline.",
		"err_stage_id_invalid":           "A stage code has only Latin letters, digits, \"_\" and \":\".",
		"err_stage_unknown":              "This stage does not belong to the chosen pipeline.",
		"err_channel_disabled":           "The channel is disabled.",
		"err_channel_error":              "The channel is in error; check its settings.",
	},
}

func textsFor(lang string) map[string]string { return pageTexts[shownLang(lang)] }

// shownLang is the language a page is shown in: Russian for the portals of
// Russian-reading countries and when unknown, English for the rest.
func shownLang(lang string) string {
	if strings.EqualFold(lang, "en") || (lang != "" && !strings.EqualFold(lang, "ru") && !strings.EqualFold(lang, "kz") && !strings.EqualFold(lang, "by") && !strings.EqualFold(lang, "ua")) {
		return "en"
	}
	return "ru"
}

// errText words an error code in the page's language; a code without a
// text (one a newer layer added) reads as an internal error rather than
// as English on a Russian page.
func errText(lang, code string) string {
	t := textsFor(lang)
	if v, ok := t["err_"+code]; ok {
		return v
	}
	// The card tab's refusals (access rights, a send's) are the chat
	// view's words.
	if v, ok := chatview.ErrText(shownLang(lang), code); ok {
		return v
	}
	return t["err_internal"]
}

// codeOf is the code a page words an error by.
func codeOf(err error) string {
	if fe := fault.As(err); fe != nil {
		return fe.Code
	}
	return "internal"
}

// cloudPortals are the origins that may frame a page before we know which
// portal asks (error pages); a known portal's pages allow only its own.
const cloudPortals = "https://*.bitrix24.ru https://*.bitrix24.com https://*.bitrix24.kz https://*.bitrix24.by https://*.bitrix24.de https://*.bitrix24.eu"

// frameAncestors allows the portal that shows the page to frame it: its
// own origin, taken from the REST endpoint the OAuth server gave, so a
// self-hosted portal or another zone (.ua, .pl, .com.br…) works too.
func frameAncestors(in *store.Integration) string {
	if in != nil {
		if u, err := url.Parse(in.ClientEndpoint); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
			!strings.ContainsAny(u.Host, " ;,'\"") {
			return "frame-ancestors " + u.Scheme + "://" + u.Host
		}
	}
	return "frame-ancestors " + cloudPortals
}

func (s *Service) renderTemplate(w http.ResponseWriter, in *store.Integration, lang string, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", frameAncestors(in))
	w.Header().Set("Cache-Control", "no-store")
	// A GET page's address carries its session; no Referer may take it to
	// the scripts and links the page loads.
	w.Header().Set("Referrer-Policy", "no-referrer")
	// Rendered into a buffer first, so that a template error cannot leave
	// half a page behind a 200.
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("bitrix24 page: template", "template", name, "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		if err := messagePage.Execute(w, pageData{Lang: lang, Text: errText(lang, "internal")}); err != nil {
			return // the status is out; nothing more can be said
		}
		return
	}
	w.WriteHeader(status)
	if _, err := buf.WriteTo(w); err != nil {
		return // the client went away
	}
}

// pageLang is the language of a refusal: the session's when it is known,
// else the LANG Bitrix24 puts in an iframe's query string.
func pageLang(r *http.Request, ss *crm.Session) string {
	if ss != nil && ss.Lang != "" {
		return ss.Lang
	}
	return cmp.Or(r.URL.Query().Get("LANG"), "ru")
}

func writePageError(w http.ResponseWriter, r *http.Request, ss *crm.Session, err error) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeError(w, err)
		return
	}
	fe, status, _ := httperr.Of(err)
	lang := pageLang(r, ss)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := messagePage.Execute(w, pageData{Lang: lang, Text: errText(lang, fe.Code)}); err != nil {
		return // the status is out; nothing more can be said
	}
}

// ---- app page ----

// appChannel is a channel's row: what it is bound to now (ModeText) and
// what its form shows (the stored binding, or what a refused save asked).
type appChannel struct {
	ID, Name, Type, Address, State            string
	ModeText                                  string
	Mode, LineID, Entity, CategoryID, StageID string
	OperatorName                              bool
}

type appPage struct {
	Lang, Domain, State, StateText, StateReason string
	Admin                                       bool
	Sess, Notice                                string
	NoticeErr                                   bool
	T                                           map[string]string
	Channels                                    []appChannel
	Choices                                     portalChoices
	// ChoicesNotice says the portal refused some lists (admins only).
	ChoicesNotice bool
}

// ServeApp handles the app page: POST from Bitrix24 (AUTH_ID), or GET with
// a session after a save.
func (s *Service) ServeApp(w http.ResponseWriter, r *http.Request) {
	in, ss, _, err := s.pageEntry(w, r)
	if err != nil {
		writePageError(w, r, ss, err)
		return
	}
	notice := ""
	if r.Method == http.MethodGet && r.URL.Query().Get("saved") == "1" {
		notice = textsFor(ss.Lang)["saved"]
	}
	s.renderApp(w, r, http.StatusOK, in, ss, notice, nil, nil)
}

// stateReason explains the portal's state in the page's language. The
// stored reason is the gateway's own, in English and mostly URLs: it is
// shown as it is only on an English page, after the explanation.
func (s *Service) stateReason(in *store.Integration, lang string) string {
	t := textsFor(lang)
	var hint string
	switch in.State {
	case store.IntegrationHandlersMismatch:
		hint = fmt.Sprintf(t["handlers_mismatch_hint"], s.eventsURL())
	case store.IntegrationNeedsReauth:
		hint = t["needs_reauth_hint"]
	}
	if shownLang(lang) != "en" || in.StateReason == "" {
		return hint
	}
	return strings.TrimSpace(hint + " " + in.StateReason)
}

// renderApp shows the page. refused is the form a save was refused for
// (shown again as it was sent, with errText); nil otherwise. pc are the
// portal's choices when the caller already read them.
func (s *Service) renderApp(w http.ResponseWriter, r *http.Request, status int, in *store.Integration, ss *crm.Session, notice string, refused *appChannel, pc *portalChoices) {
	ctx := r.Context()
	t := textsFor(ss.Lang)
	p := appPage{Lang: ss.Lang, Domain: in.Domain, State: in.State, StateText: cmp.Or(t[in.State], in.State), StateReason: s.stateReason(in, ss.Lang),
		Admin: ss.Admin, Sess: s.sessions.Sign(*ss), Notice: notice, NoticeErr: refused != nil, T: t}
	chs, err := s.store.ListChannels(ctx, store.Scope{WorkspaceID: in.WorkspaceID})
	if err != nil {
		s.log.Error("bitrix24 app page: channels", "integration_id", in.ID, "err", err)
		writePageError(w, r, ss, err)
		return
	}
	bs, err := s.store.ListBindings(ctx, in.ID)
	if err != nil {
		s.log.Error("bitrix24 app page: bindings", "integration_id", in.ID, "err", err)
		writePageError(w, r, ss, err)
		return
	}
	byChannel := map[string]store.ChannelBinding{}
	for _, b := range bs {
		byChannel[b.ChannelID] = b
	}
	for _, ch := range chs {
		if ch.State == store.ChannelDisabled {
			continue
		}
		c := appChannel{ID: ch.ID, Name: ch.Name, Type: ch.Type, Address: cmp.Or(ch.DisplayPhone, ch.AccountID),
			State: cmp.Or(t["channel_"+ch.State], ch.State), Mode: "none"}
		if ch.StateReason != "" {
			c.State += ": " + ch.StateReason
		}
		if b, ok := byChannel[ch.ID]; ok {
			c.Mode, c.LineID, c.Entity, c.CategoryID, c.StageID = b.Mode, b.LineID, b.Entity, b.CategoryID, b.StageID
			c.OperatorName = bindingSettings(&b).OperatorName
			if b.Mode == ModeOpenLines {
				c.ModeText = t["mode_openlines"] + " #" + b.LineID
			} else {
				c.ModeText = t["mode_crm"] + ": " + cmp.Or(t["bound_"+b.Entity], b.Entity)
			}
		}
		if refused != nil && refused.ID == ch.ID {
			c.Mode, c.LineID, c.Entity, c.CategoryID, c.StageID, c.OperatorName =
				refused.Mode, refused.LineID, refused.Entity, refused.CategoryID, refused.StageID, refused.OperatorName
		}
		p.Channels = append(p.Channels, c)
	}
	if ss.Admin && routing.Live(in) {
		if pc == nil {
			loaded := s.loadChoices(ctx, in)
			pc = &loaded
		}
		p.Choices = *pc
		p.ChoicesNotice = !pc.LinesOK || !pc.StagesOK || !pc.StatusOK
	}
	s.renderTemplate(w, in, ss.Lang, status, "b24_app.html", p)
}

// ServeAppBind saves a channel's binding from the app page, through the
// same code as the admin API. Everything is read from the POST body: a
// query string (a link someone was sent) changes nothing.
func (s *Service) ServeAppBind(w http.ResponseWriter, r *http.Request) {
	if _, err := readForm(w, r); err != nil {
		writePageError(w, r, nil, err)
		return
	}
	in, ss, err := s.sessionFrom(r)
	if err != nil {
		writePageError(w, r, ss, err)
		return
	}
	if !ss.Admin {
		writePageError(w, r, ss, fault.New(fault.Forbidden, "admin_only", "only a portal administrator can change where messages go"))
		return
	}
	f := r.PostForm
	scope := store.Scope{WorkspaceID: in.WorkspaceID}
	// Only the fields of the chosen mode count: the page sends every field
	// (it works without script), hidden or not.
	sent := appChannel{ID: f.Get("channel_id"), Mode: f.Get("mode"), OperatorName: f.Get("operator_name") == "1"}
	var pc *portalChoices
	if sent.Mode == "none" {
		err = s.Unbind(r.Context(), scope, in.ID, sent.ID)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
	} else {
		req := BindRequest{Mode: sent.Mode, OperatorName: &sent.OperatorName, keepPolicy: true}
		switch sent.Mode {
		case ModeOpenLines:
			req.LineID = strings.TrimSpace(f.Get("line_id"))
			sent.LineID = req.LineID
		case ModeCRM:
			req.Entity, req.StageID = f.Get("entity"), strings.TrimSpace(f.Get("stage_id"))
			if req.Entity == "deal" {
				req.CategoryID = strings.TrimSpace(f.Get("category_id"))
			}
			sent.Entity, sent.CategoryID, sent.StageID = req.Entity, req.CategoryID, req.StageID
		}
		if routing.Live(in) && (sent.Mode == ModeOpenLines || sent.Mode == ModeCRM) {
			loaded := s.loadChoices(r.Context(), in)
			pc = &loaded
		}
		_, err = s.bind(r.Context(), scope, in.ID, sent.ID, req, pc)
	}
	if err == nil {
		q := url.Values{"sess": {s.sessions.Sign(*ss)}, "saved": {"1"}}
		http.Redirect(w, r, "/bitrix24/app?"+q.Encode(), http.StatusSeeOther)
		return
	}
	_, status, ok := httperr.Of(err)
	if !ok {
		s.log.Error("bitrix24 app page bind", "integration_id", in.ID, "err", err)
	}
	// Shown again as sent, so the admin keeps the chosen mode and fields.
	s.renderApp(w, r, status, in, ss, errText(ss.Lang, codeOf(err)), &sent, pc)
}
