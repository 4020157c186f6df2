package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/templates"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// templatesReply is the answer of both template routes.
type templatesReply struct {
	Templates []templates.Template `json:"templates"`
}

// listTemplates answers GET /api/v1/channels/{id}/templates: the stored
// copy, refreshed daily and by POST …/templates/refresh.
func (s *Server) listTemplates(c *gin.Context) {
	ts, err := s.d.Templates.List(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, templatesReply{Templates: ts})
}

// refreshTemplates answers POST /api/v1/channels/{id}/templates/refresh:
// the set read from Meta now replaces the stored one.
func (s *Server) refreshTemplates(c *gin.Context) {
	ts, err := s.d.Templates.Refresh(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, templatesReply{Templates: ts})
}

// templatePageRow is a template as the cabinet lists it.
type templatePageRow struct {
	Name, Language, Category, Status, StatusClass, StatusLabel string
	Variables                                                  int
	Synced                                                     string
}

// templatesPageData is the templates page's own part.
type templatesPageData struct {
	ChannelID, ChannelName string
	Rows                   []templatePageRow
	CanRefresh             bool
}

// mountCabinetTemplates adds the channel's templates page: everyone signed
// in may see it (managers pick templates in the chat), owners and admins
// refresh it.
func (s *Server) mountCabinetTemplates(in, admin *gin.RouterGroup) {
	in.GET("/channels/:channel_id/templates", s.templatesPage)
	admin.POST("/channels/:channel_id/templates/refresh", s.refreshTemplatesPage)
}

func (s *Server) templatesPage(c *gin.Context) {
	p := s.newPage(c, "channels")
	if c.Query("done") == "templates_refreshed" {
		p.Notice = p.T["templates_refreshed"]
	}
	s.renderTemplates(c, http.StatusOK, p)
}

func (s *Server) refreshTemplatesPage(c *gin.Context) {
	cc := cabinetOf(c)
	id := c.Param("channel_id")
	if !store.ValidID(id) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return
	}
	_, err := s.d.Templates.Refresh(c.Request.Context(), store.Scope{WorkspaceID: cc.Workspace.ID}, id)
	if fe := fault.As(err); fe != nil && fe.Kind != fault.NotFound {
		p := s.newPage(c, "channels")
		p.Refused = problemOf(p.T, err)
		s.renderTemplates(c, httperr.Status(fe.Kind), p)
		return
	}
	if err != nil {
		s.templatesErr(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/channels/"+id+"/templates?done=templates_refreshed")
	c.Abort()
}

func (s *Server) templatesErr(c *gin.Context, err error) {
	if fe := fault.As(err); fe != nil && fe.Kind == fault.NotFound {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return
	}
	s.pageErr(c, err)
}

func (s *Server) renderTemplates(c *gin.Context, status int, p *page) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	id := c.Param("channel_id")
	if !store.ValidID(id) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return
	}
	sc := store.Scope{WorkspaceID: cc.Workspace.ID}
	ch, err := s.d.Store.GetChannel(ctx, sc, id)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	d := &templatesPageData{ChannelID: ch.ID, ChannelName: ch.Name, CanRefresh: p.IsAdmin}
	ts, err := s.d.Templates.List(ctx, sc, id)
	if fe := fault.As(err); fe != nil && fe.Kind == fault.Conflict {
		// A channel without templates shows why, not an error page.
		if p.Refused == nil {
			p.Refused = problemOf(p.T, err)
		}
		d.CanRefresh = false
	} else if err != nil {
		s.templatesErr(c, err)
		return
	}
	for _, t := range ts {
		d.Rows = append(d.Rows, templatePageRow{Name: t.Name, Language: t.Language, Category: t.Category, Status: t.Status,
			StatusClass: statusClass(t.Status), StatusLabel: templateStatusLabel(p.T, t.Status), Variables: t.Variables,
			Synced: when(t.SyncedAt, p.TZ, p.Lang)})
	}
	p.TemplatesPage = d
	s.render(c, status, "templates", p)
}

// statusClass colours a template's review status: approved green, waiting
// amber, refused or stopped red.
func statusClass(status string) string {
	switch status {
	case "APPROVED":
		return "active"
	case "PENDING", "IN_APPEAL", "PENDING_DELETION":
		return "pending"
	case "REJECTED", "DISABLED", "PAUSED", "DELETED", "LIMIT_EXCEEDED", "ARCHIVED":
		return "error"
	}
	return ""
}

// templateStatusLabel is the status in the reader's words, or Meta's word
// for a status the page does not know.
func templateStatusLabel(t map[string]string, status string) string {
	if l, ok := t["tpl_"+status]; ok {
		return l
	}
	return status
}
