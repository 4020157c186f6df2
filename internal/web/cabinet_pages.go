package web

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
	assets "github.com/switchboard/switchboard/web"
)

// cabinetPages are the cabinet's templates, parsed once.
var cabinetPages = template.Must(template.ParseFS(assets.Templates, "templates/cabinet_*.html", "templates/chat_*.html"))

// page is what every cabinet template gets.
type page struct {
	Lang    string
	T       map[string]string
	Nav     string
	User    *store.CabinetUser
	WS      *store.Workspace
	IsAdmin bool
	CSRF    string
	// Back is the page's address with its query (the open dialog, the
	// list's filter): where switching the language comes back to.
	Back string
	TZ   string

	// Sign-in.
	Email   string
	Problem string
	// Next is where signing in goes on to (a path of this site).
	Next string
	// Home.
	Channels     []channelRow
	Integrations []integrationRow
	// Employees.
	Users     []employeeRow
	Generated string
	// GeneratedFor is whose password Generated is, after a reset.
	GeneratedFor string
	// EditRefused: Problem is an edit's or a reset's, not the add form's.
	EditRefused bool
	Notice      string
	Field       string
	Form        NewUser
	Refusal     [2]string
	// Channels, integrations and their settings.
	adminPage
	// A channel's message templates.
	TemplatesPage *templatesPageData
	// The shared chat.
	Chat *chatPage
	// The Templates page's quick replies.
	Quick *quickPageData
	// The workspace's settings form.
	WorkspaceForm *workspaceForm
}

type channelRow struct {
	Name, Type, State, StateLabel, Reason, LastInbound string
	// LastWebhook is when a webhook for the channel last arrived.
	LastWebhook string
	Messages24h int64
}

type integrationRow struct {
	// Type is the CRM's display name ("amoCRM"), not its type id.
	Type, Domain, State, StateLabel, Reason string
}

type employeeRow struct {
	ID, Email, Name, Role, RoleLabel, Added, CRMUsers string
	Self, CanDelete, CanEdit                          bool
}

// lang is the reader's language: the signed-in user's choice, else the
// one picked on the sign-in page, else the browser's.
func lang(c *gin.Context) string {
	if cc := cabinetOf(c); cc != nil && (cc.User.Language == "ru" || cc.User.Language == "en") {
		return cc.User.Language
	}
	if l, err := c.Cookie(langCookie); err == nil && (l == "ru" || l == "en") {
		return l
	}
	return acceptLanguage(c.GetHeader("Accept-Language"))
}

func (s *Server) newPage(c *gin.Context, nav string) *page {
	l := lang(c)
	p := &page{Lang: l, T: cabinetTexts[l], Nav: nav, Back: c.Request.URL.RequestURI()}
	if cc := cabinetOf(c); cc != nil {
		p.User, p.WS, p.CSRF = cc.User, cc.Workspace, cc.csrf
		p.IsAdmin = cc.User.Role == store.RoleOwner || cc.User.Role == store.RoleAdmin
		p.TZ = cc.Workspace.Timezone
	}
	return p
}

// render writes a page; the security headers keep it out of frames and
// caches and stop inline scripts from elsewhere.
func (s *Server) render(c *gin.Context, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := cabinetPages.ExecuteTemplate(&buf, name, p); err != nil {
		s.d.Log.Error("cabinet page failed to render", "page", name, "err", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	c.Abort()
}

// refusePage answers with a page saying why, in Russian and English.
func (s *Server) refusePage(c *gin.Context, status int, why string) {
	p := s.newPage(c, "")
	p.Refusal = refusals[why]
	s.render(c, status, "refused", p)
}

// pageErr is failErr for pages.
func (s *Server) pageErr(c *gin.Context, err error) {
	if errors.Is(err, store.ErrNotFound) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return
	}
	s.d.Log.Error("cabinet request failed", "path", c.FullPath(), "err", err)
	s.refusePage(c, http.StatusInternalServerError, "internal")
}

// when formats a moment in the workspace's clock.
func when(t time.Time, tz, lang string) string {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	return chatview.FormatTime(t, loc, lang)
}

func stateLabel(t map[string]string, state string) string {
	if l, ok := t["st_"+state]; ok {
		return l
	}
	return state
}

// homePage shows the workspace at a glance: its channels and integrations
// with their states.
func (s *Server) homePage(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	p := s.newPage(c, "home")
	sc := store.Scope{WorkspaceID: cc.Workspace.ID}
	chs, err := s.d.Store.ListChannels(ctx, sc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	ids := make([]string, len(chs))
	for i := range chs {
		ids[i] = chs[i].ID
	}
	act, err := s.d.Store.ChannelActivities(ctx, cc.Workspace.ID, ids)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	for _, ch := range chs {
		r := channelRow{Name: ch.Name, Type: ch.Type, State: ch.State, StateLabel: stateLabel(p.T, ch.State), Reason: ch.StateReason,
			LastInbound: p.T["never"], Messages24h: act[ch.ID].Messages24h}
		if at := act[ch.ID].LastInboundAt; at != nil {
			r.LastInbound = when(*at, p.TZ, p.Lang)
		}
		p.Channels = append(p.Channels, r)
	}
	ins, err := s.d.Store.ListIntegrations(ctx, sc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	for _, in := range ins {
		p.Integrations = append(p.Integrations, integrationRow{Type: s.d.Integrations.DisplayName(in.Type), Domain: in.Domain, State: in.State,
			StateLabel: stateLabel(p.T, in.State), Reason: in.StateReason})
	}
	s.render(c, http.StatusOK, "home", p)
}

// canManage says whether the signed-in user may add or remove someone of
// role: an admin manages admins and managers, only an owner owners.
func canManage(me *store.CabinetUser, role string) bool {
	return me.Role == store.RoleOwner || (me.Role == store.RoleAdmin && role != store.RoleOwner)
}

// employeesPage lists the workspace's cabinet users.
func (s *Server) employeesPage(c *gin.Context) {
	s.renderEmployees(c, http.StatusOK, s.newPage(c, "employees"))
}

func (s *Server) renderEmployees(c *gin.Context, status int, p *page) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	us, err := s.d.Store.ListCabinetUsers(ctx, store.Scope{WorkspaceID: cc.Workspace.ID}, cc.Workspace.ID)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	links, err := s.d.Store.CabinetUserCRMLinks(ctx, userIDs(us))
	if err != nil {
		s.pageErr(c, err)
		return
	}
	for _, u := range us {
		r := employeeRow{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, RoleLabel: p.T["role_"+u.Role],
			Added: when(u.CreatedAt, p.TZ, p.Lang), Self: u.ID == cc.User.ID}
		r.CanDelete = !r.Self && canManage(cc.User, u.Role)
		r.CanEdit = canManage(cc.User, u.Role)
		for in, crmUser := range links[u.ID] {
			if r.CRMUsers != "" {
				r.CRMUsers += ", "
			}
			r.CRMUsers += crmUser + " (" + in[len(in)-6:] + ")"
		}
		p.Users = append(p.Users, r)
	}
	if p.Form.Role == "" {
		p.Form.Role = store.RoleManager
	}
	// The access matrix lives with each integration: linked from here.
	if p.Integrated, err = s.integrationRows(ctx, cc.Workspace.ID, p.T); err != nil {
		s.pageErr(c, err)
		return
	}
	s.render(c, status, "employees", p)
}

// addEmployee creates a cabinet user from the page's form.
func (s *Server) addEmployee(c *gin.Context) {
	cc := cabinetOf(c)
	p := s.newPage(c, "employees")
	nu := NewUser{Email: c.PostForm("email"), Name: c.PostForm("name"), Role: c.PostForm("role"), Password: c.PostForm("password")}
	if !canManage(cc.User, nu.Role) {
		s.refusePage(c, http.StatusForbidden, "forbidden")
		return
	}
	_, generated, err := CreateUser(c.Request.Context(), s.d.Store, store.Scope{WorkspaceID: cc.Workspace.ID}, cc.Workspace.ID, nu)
	if fe := fault.As(err); fe != nil {
		nu.Password = ""
		p.Form, p.Problem, p.Field = nu, fe.Message, fe.Field
		// In the page's language: the API's words were shown as they
		// came (found by a new user: an English refusal on a Russian page).
		code := fe.Code
		if code == "name_invalid" {
			code = "person_name_invalid" // a person's name, not a channel's
		}
		if txt, ok := p.T["e_"+code]; ok {
			p.Problem = txt
		}
		s.renderEmployees(c, http.StatusUnprocessableEntity, p)
		return
	}
	if err != nil {
		s.pageErr(c, err)
		return
	}
	p.Generated, p.Notice = generated, p.T["added_ok"]
	s.renderEmployees(c, http.StatusOK, p)
}

// deleteEmployee removes a cabinet user of the workspace (not oneself).
func (s *Server) deleteEmployee(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	sc := store.Scope{WorkspaceID: cc.Workspace.ID}
	id := c.Param("user_id")
	if !store.ValidID(id) || id == cc.User.ID {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return
	}
	u, err := s.d.Store.GetCabinetUser(ctx, sc, cc.Workspace.ID, id)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	if !canManage(cc.User, u.Role) {
		s.refusePage(c, http.StatusForbidden, "forbidden")
		return
	}
	if _, err := s.d.Store.DeleteCabinetUser(ctx, sc, cc.Workspace.ID, id); err != nil {
		s.pageErr(c, err)
		return
	}
	p := s.newPage(c, "employees")
	p.Notice = p.T["deleted_ok"]
	s.renderEmployees(c, http.StatusOK, p)
}
