package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// The cabinet's Templates page: the workspace's quick replies (everyone
// sees them, owners and admins add, edit and delete) and a link to each
// WhatsApp channel's message templates.

// quickPageData is the Templates page's own part.
type quickPageData struct {
	Rows []quickRow
	// Channels are the WhatsApp channels, for their templates' pages.
	Channels []store.Channel
	// Form is what a refused add sent, shown again; EditID names the
	// reply whose edit was refused.
	Form   quickReplyInput
	EditID string
	// FileMax is the file cap in MiB, for the form's hint.
	FileMax int64
}

// quickRow is a quick reply as the page lists it.
type quickRow struct {
	ID, Title, Text, Filename, Size string
}

// mountCabinetQuick adds the Templates page. The add and edit forms carry
// a file, so their bodies are read (capped) before the CSRF token in them
// is checked, like the chat's send box.
func (s *Server) mountCabinetQuick(in, admin *gin.RouterGroup) {
	in.GET("/templates", s.quickPage)
	s.engine.POST("/templates/quick-replies", s.signedIn, s.adminOnly, s.quickSave)
	s.engine.POST("/templates/quick-replies/:id", s.signedIn, s.adminOnly, s.quickSave)
	admin.POST("/templates/quick-replies/:id/delete", s.quickDelete)
}

// quickDone are the notices a redirect back may name.
var quickDone = map[string]string{"added": "quick_added", "saved": "quick_saved", "deleted": "quick_deleted"}

func (s *Server) quickPage(c *gin.Context) {
	p := s.newPage(c, "templates")
	if k, ok := quickDone[c.Query("done")]; ok {
		p.Notice = p.T[k]
	}
	s.renderQuick(c, http.StatusOK, p, nil)
}

// renderQuick shows the page; form (may be nil) is a refused form's input.
func (s *Server) renderQuick(c *gin.Context, status int, p *page, form *quickReplyInput) {
	ctx := c.Request.Context()
	sc := store.Scope{WorkspaceID: cabinetOf(c).Workspace.ID}
	qs, err := s.d.Store.ListQuickReplies(ctx, sc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	chs, err := s.d.Store.ListChannels(ctx, sc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	d := &quickPageData{FileMax: s.quickFileLimit() >> 20}
	for _, ch := range chs {
		if ch.Type == "whatsapp" {
			d.Channels = append(d.Channels, ch)
		}
	}
	for _, q := range qs {
		r := quickRow{ID: q.ID, Title: q.Title, Text: q.Text, Filename: q.Filename}
		if q.FileKey != "" {
			r.Size = sizeWords(q.FileSize, p.Lang)
		}
		d.Rows = append(d.Rows, r)
	}
	if form != nil {
		d.Form = *form
		d.EditID = c.Param("id")
	}
	p.Quick = d
	s.render(c, status, "quick", p)
}

// sizeWords is a file size as people read it, in the page's language.
func sizeWords(n int64, lang string) string {
	b, kb, mb := " B", " KB", " MB"
	if lang == "ru" {
		b, kb, mb = " Б", " КБ", " МБ"
	}
	switch {
	case n >= 1<<20:
		v := strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64)
		if lang == "ru" {
			v = strings.Replace(v, ".", ",", 1)
		}
		return v + mb
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + kb
	}
	return strconv.FormatInt(n, 10) + b
}

// quickSave adds (no id) or edits a quick reply from the page's form.
func (s *Server) quickSave(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	in, err := s.readQuickReply(c)
	// A body that could not be read (too large, broken) changes nothing
	// and is answered with why; one that was read must carry the token.
	if err == nil && !s.csrfOK(c) {
		return
	}
	var old *store.QuickReply
	if id := c.Param("id"); id != "" {
		var q *store.QuickReply
		var gerr error
		if store.ValidID(id) {
			q, gerr = s.d.Store.GetQuickReply(ctx, store.Scope{WorkspaceID: cc.Workspace.ID}, id)
		} else {
			gerr = store.ErrNotFound
		}
		if errors.Is(gerr, store.ErrNotFound) {
			s.refusePage(c, http.StatusNotFound, "not_found")
			return
		}
		if gerr != nil {
			s.pageErr(c, gerr)
			return
		}
		old = q
	}
	if err == nil {
		_, err = s.saveQuickReply(ctx, cc.Workspace.ID, old, in)
	}
	if fe := fault.As(err); fe != nil {
		p := s.newPage(c, "templates")
		p.Refused = problemOf(p.T, err)
		if fe.Code == channel.MediaTypeUnsupported && in != nil && in.file != nil {
			// Name the file the messenger would refuse.
			p.Refused.Text = fmt.Sprintf(p.T["quick_file_refused"], in.file.Filename)
		}
		if in == nil {
			in = &quickReplyInput{}
		}
		s.renderQuick(c, httperr.Status(fe.Kind), p, in)
		return
	}
	if err != nil {
		s.pageErr(c, err)
		return
	}
	done := "added"
	if old != nil {
		done = "saved"
	}
	c.Redirect(http.StatusSeeOther, "/templates?done="+done)
}

func (s *Server) quickDelete(c *gin.Context) {
	err := s.deleteQuickReply(c.Request.Context(), store.Scope{WorkspaceID: cabinetOf(c).Workspace.ID}, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return
	}
	if err != nil {
		s.pageErr(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/templates?done=deleted")
}
