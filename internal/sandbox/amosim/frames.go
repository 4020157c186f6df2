package amosim

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The widget's frames: what a user of the account sees of the widget. In
// amoCRM the widget's script runs in the account's own page (its origin is
// the account's host), asks for a disposable token with $authorizedAjax,
// trades it at the gateway for a ticket and puts an iframe of the
// gateway's page into the card's widget column or the advanced settings
// work area. These pages stand in for the account's pages: served from the
// simulator's origin (the account's, as far as the gateway knows), they
// mint the token server side, as amoCRM gives it to the widget, and their
// script does in the browser what the widget's script does, so the
// gateway's CORS answer and its frame-ancestors are exercised for real.
//
//	GET /sim/widget/settings?account=&user=&lang=                      the advanced settings page
//	GET /sim/widget/card?account=&user=&entity=leads|contacts&id=&lang= a lead's or contact's card
//	GET /sim/widget/frame.js                                           the widget script's stand-in

//go:embed frame.js
var frameJS []byte

// Frame page routes.
const (
	FrameSettingsPath = "/sim/widget/settings"
	FrameCardPath     = "/sim/widget/card"
	frameScriptPath   = "/sim/widget/frame.js"
)

func (s *Server) frameRoutes(m *http.ServeMux) {
	m.HandleFunc("GET "+FrameSettingsPath, s.handleFrame)
	m.HandleFunc("GET "+FrameCardPath, s.handleFrame)
	m.HandleFunc("GET "+frameScriptPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(frameJS)
	})
}

// GatewayURL is the gateway the widget's frames call: Options.GatewayURL,
// else the scheme and host of the redirect URI, without a trailing slash.
func (s *Server) GatewayURL() string {
	if g := strings.TrimRight(s.opts.GatewayURL, "/"); g != "" {
		return g
	}
	return origin(s.opts.RedirectURI)
}

// origin is scheme://host of a URL, "" when it has none.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// frameField is one line of the card's left column.
type frameField struct {
	Label, LabelRU, Value string
}

// framePage is what the frame template shows.
type framePage struct {
	Lang     string
	Purpose  string // "settings" or "card"
	Account  AccountSpec
	User     User
	Entity   string // "leads" or "contacts" for a card
	ID       int
	Title    string
	Fields   []frameField
	Gateway  string
	Token    string
	Origin   string // the gateway's origin, for the CSP
	Reopen   string
	Problem  string // a refusal before any token: English
	ProblemR string // and Russian
}

// handleFrame serves the settings page and the card: a refusal (unknown
// account, user or record; a user who cannot log in) is a bilingual page
// with its status and no token.
func (s *Server) handleFrame(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := &framePage{Purpose: "settings", Gateway: s.GatewayURL(), Reopen: r.URL.RequestURI()}
	if r.URL.Path == FrameCardPath {
		p.Purpose = "card"
	}
	p.Origin = origin(p.Gateway)
	status, en, ru := s.fillFrame(p, q)
	if status == http.StatusOK && p.Origin == "" {
		status, en, ru = http.StatusInternalServerError, "the gateway URL is not set (-gateway-url or the redirect URI)",
			"адрес шлюза не задан (-gateway-url или адрес перенаправления)"
	}
	aud := origin(s.opts.RedirectURI)
	if status == http.StatusOK && aud == "" {
		status, en, ru = http.StatusInternalServerError, "the integration's redirect URI is not set: a widget token has no audience",
			"адрес перенаправления интеграции не задан: у токена виджета нет получателя"
	}
	if status == http.StatusOK {
		// amoCRM signs the disposable token for the scheme and host of
		// the integration's redirect URI; the widget gets a new one for
		// every call, so every load of the page mints one.
		tok, _, err := s.DisposableToken(p.Account.ID, p.User.ID, aud)
		if err != nil {
			status, en, ru = http.StatusNotFound, err.Error(), "пользователь не найден"
		}
		p.Token = tok
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store") // the page carries a token
	h.Set("X-Content-Type-Options", "nosniff")
	// No inline script: the page's one script is frame.js.
	csp := "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if p.Origin != "" {
		csp += "; connect-src " + p.Origin + "; frame-src " + p.Origin
	}
	h.Set("Content-Security-Policy", csp)
	if status != http.StatusOK {
		p.Token, p.Problem, p.ProblemR = "", en, ru
	}
	w.WriteHeader(status)
	if err := frameTmpl.Execute(w, p); err != nil {
		s.log.Warn("amosim: frame page", "err", err)
	}
}

// fillFrame reads the query into p: the account, the user (the account's
// first active admin by default), the language (the user's by default) and,
// for a card, the record and its fields.
func (s *Server) fillFrame(p *framePage, q url.Values) (int, string, string) {
	p.Lang = "ru"
	accID, err := strconv.Atoi(q.Get("account"))
	if q.Get("account") == "" {
		accID, err = ExampleAccount().ID, nil
	}
	if err != nil {
		return http.StatusBadRequest, "account must be a number", "account должен быть числом"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accID]
	if a == nil {
		return http.StatusNotFound, fmt.Sprintf("no account %d in the simulator", accID), fmt.Sprintf("в симуляторе нет аккаунта %d", accID)
	}
	p.Account = a.spec
	userID := a.installer
	if v := q.Get("user"); v != "" {
		if userID, err = strconv.Atoi(v); err != nil {
			return http.StatusBadRequest, "user must be a number", "user должен быть числом"
		}
	}
	u := a.user(userID)
	if u == nil {
		return http.StatusNotFound, fmt.Sprintf("no user %d in account %d", userID, accID), fmt.Sprintf("в аккаунте %d нет пользователя %d", accID, userID)
	}
	p.User = *u
	if strings.HasPrefix(u.Lang, "en") {
		p.Lang = "en"
	}
	switch q.Get("lang") {
	case "ru", "en":
		p.Lang = q.Get("lang")
	case "":
	default:
		return http.StatusBadRequest, "lang is ru or en", "lang — ru или en"
	}
	if !u.IsActive {
		// A deactivated user cannot log in, so amoCRM never runs the
		// widget for them.
		return http.StatusForbidden, fmt.Sprintf("user %d (%s) is deactivated and cannot log in to amoCRM", u.ID, u.Name),
			fmt.Sprintf("пользователь %d (%s) отключён и не может войти в amoCRM", u.ID, u.Name)
	}
	if p.Purpose == "settings" {
		p.Title = "Switchboard"
		if !u.IsAdmin {
			// amoCRM shows the advanced settings page to anyone who opens
			// its address; the gateway decides what a manager may do.
			p.Fields = append(p.Fields, frameField{"Role", "Роль", "not an account admin: the gateway decides what may be changed / не администратор аккаунта: что можно менять, решает шлюз"})
		}
		return http.StatusOK, "", ""
	}
	p.Entity = q.Get("entity")
	if p.ID, err = strconv.Atoi(q.Get("id")); err != nil || p.ID <= 0 {
		return http.StatusBadRequest, "id must be the record's id", "id должен быть номером записи"
	}
	switch p.Entity {
	case "leads":
		l := a.leads[p.ID]
		if l == nil {
			return http.StatusNotFound, fmt.Sprintf("no lead %d in account %d", p.ID, accID), fmt.Sprintf("в аккаунте %d нет сделки %d", accID, p.ID)
		}
		p.Title, p.Fields = l.Name, a.leadFields(l)
	case "contacts":
		c := a.contacts[p.ID]
		if c == nil {
			return http.StatusNotFound, fmt.Sprintf("no contact %d in account %d", p.ID, accID), fmt.Sprintf("в аккаунте %d нет контакта %d", accID, p.ID)
		}
		p.Title, p.Fields = c.Name, a.contactFields(c)
	default:
		return http.StatusBadRequest, "entity is leads or contacts", "entity — leads или contacts"
	}
	return http.StatusOK, "", ""
}

func (a *account) userName(id int) string {
	if u := a.user(id); u != nil {
		return u.Name
	}
	if id == 0 {
		return ""
	}
	return "#" + strconv.Itoa(id)
}

func (a *account) leadFields(l *Lead) []frameField {
	stage := fmt.Sprintf("%d / %d", l.PipelineID, l.StatusID)
	for _, pl := range a.spec.Pipelines {
		for _, st := range pl.Statuses {
			if pl.ID == l.PipelineID && st.ID == l.StatusID {
				stage = pl.Name + " → " + st.Name
			}
		}
	}
	f := []frameField{{"Stage", "Этап", stage}, {"Budget", "Бюджет", strconv.Itoa(l.Price)},
		{"Responsible", "Ответственный", a.userName(l.ResponsibleUserID)}}
	for _, cid := range l.ContactIDs {
		if c := a.contacts[cid]; c != nil {
			f = append(f, frameField{"Contact", "Контакт", strings.TrimSpace(c.Name + " " + values(c.Phones))})
		}
	}
	if len(l.Tags) > 0 {
		f = append(f, frameField{"Tags", "Теги", strings.Join(l.Tags, ", ")})
	}
	return append(f, frameField{"Created", "Создана", time.Unix(l.CreatedAt, 0).UTC().Format("2006-01-02 15:04Z")})
}

func (a *account) contactFields(c *Contact) []frameField {
	f := []frameField{{"Phone", "Телефон", values(c.Phones)}, {"Email", "Email", values(c.Emails)},
		{"Responsible", "Ответственный", a.userName(c.ResponsibleUserID)}}
	for _, lid := range c.LeadIDs {
		if l := a.leads[lid]; l != nil {
			f = append(f, frameField{"Lead", "Сделка", l.Name})
		}
	}
	if len(c.Tags) > 0 {
		f = append(f, frameField{"Tags", "Теги", strings.Join(c.Tags, ", ")})
	}
	return f
}

func values(vs []Value) string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Value)
	}
	return strings.Join(out, ", ")
}

// frameTmpl draws a minimal amoCRM page: the dark left menu, the card's
// fields (or the settings' breadcrumbs) and the widget's column, where
// frame.js puts the gateway's iframe. html/template escapes every value
// (lead and contact names are customer input).
var frameTmpl = template.Must(template.New("frame").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<title>{{if eq .Purpose "card"}}{{.Title}}{{else}}Switchboard · {{.Account.Name}}{{end}} · amosim</title>
<style>
 html, body { margin: 0; height: 100%; }
 body { font: 14px/1.4 system-ui, sans-serif; color: #2e3640; background: #f5f5f5; display: flex; }
 nav { width: 64px; background: #0f2231; color: #8ea3b3; font-size: 11px; text-align: center; padding-top: 12px; flex: none; }
 nav b { display: block; color: #fff; font-size: 15px; margin-bottom: 18px; }
 nav span { display: block; margin: 10px 0; }
 nav span.on { color: #fff; }
 .ru { color: #8a96a0; font-weight: normal; }
 .meta { color: #8a96a0; font-size: 12px; }
 main { flex: 1; display: flex; min-width: 0; }
 .record { width: 340px; flex: none; background: #fff; border-right: 1px solid #e0e4e7; padding: 16px 20px; overflow: auto; }
 .record h1 { font-size: 18px; margin: 0 0 4px; word-break: break-word; }
 .record dl { margin: 16px 0 0; } .record dt { color: #8a96a0; font-size: 12px; margin-top: 10px; } .record dd { margin: 2px 0 0; word-break: break-word; }
 .column { flex: 1; padding: 16px 20px; min-width: 0; }
 .card .column { max-width: 420px; }
 .settings .record { width: 220px; }
 .widget { background: #fff; border: 1px solid #e0e4e7; border-radius: 4px; }
 .widget h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; margin: 0; padding: 10px 12px; border-bottom: 1px solid #e0e4e7; }
 #widget iframe { display: block; width: 100%; border: 0; }
 .card #widget iframe { height: 520px; }
 .settings #widget iframe { height: calc(100vh - 130px); min-height: 480px; }
 .message { padding: 12px; } .message p { margin: 0 0 6px; }
 .error { background: #fff4f4; border-left: 3px solid #e2474d; }
 #trace { margin-top: 8px; word-break: break-all; }
 a { color: #1375ab; }
</style>
<script src="/sim/widget/frame.js" defer></script>
</head>
<body class="{{.Purpose}}">
<nav><b>amo</b>{{if eq .Purpose "card"}}<span class="on">{{if eq .Entity "leads"}}Leads<br>Сделки{{else}}Contacts<br>Контакты{{end}}</span><span>Settings<br>Настройки</span>{{else}}<span>Leads<br>Сделки</span><span class="on">Settings<br>Настройки</span>{{end}}</nav>
<main>
<section class="record">
{{if eq .Purpose "card"}}<div class="meta">{{if eq .Entity "leads"}}Lead <span class="ru">/ Сделка</span>{{else}}Contact <span class="ru">/ Контакт</span>{{end}} #{{.ID}}</div>
<h1>{{.Title}}</h1>{{else}}<div class="meta">Settings › Widgets <span class="ru">/ Настройки › Виджеты</span></div>
<h1>{{.Title}}</h1>{{end}}
<div class="meta">{{.Account.Name}} · {{.Account.Domain}} · id {{.Account.ID}}</div>
<dl>{{if .User.ID}}<dt>Signed in as <span class="ru">/ Вход выполнен как</span></dt><dd>{{.User.Name}} (#{{.User.ID}}{{if .User.IsAdmin}}, admin{{end}}) · {{.Lang}}</dd>{{end}}
{{range .Fields}}{{if .Value}}<dt>{{.Label}} <span class="ru">/ {{.LabelRU}}</span></dt><dd>{{.Value}}</dd>
{{end}}{{end}}</dl>
</section>
<section class="column">
<div class="widget"><h2>Switchboard</h2>
{{if .Problem}}<div class="message error" id="problem"><p>{{.ProblemR}}</p><p>{{.Problem}}</p></div>
{{else}}<div id="widget" data-gateway="{{.Gateway}}" data-token="{{.Token}}" data-purpose="{{.Purpose}}" data-entity="{{.Entity}}" data-id="{{.ID}}" data-lang="{{.Lang}}">
<div class="message"><p>Loading… <span class="ru">/ Загрузка…</span></p></div></div>{{end}}
</div>
<div class="meta" id="trace">Gateway <span class="ru">/ Шлюз</span>: <code>{{.Gateway}}</code> · <a href="{{.Reopen}}">Reopen with a new token <span class="ru">/ Открыть заново с новым токеном</span></a> · <a href="/sim/">/sim/</a></div>
</section>
</main>
</body>
</html>
`))
