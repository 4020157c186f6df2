package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/crm/bitrix24"
	"github.com/switchboard/switchboard/internal/store"
)

type integrationView struct {
	ID          string        `json:"id"`
	WorkspaceID string        `json:"workspace_id"`
	Type        string        `json:"type"`
	State       string        `json:"state"`
	StateReason string        `json:"state_reason,omitempty"`
	Domain      string        `json:"domain,omitempty"`
	Language    string        `json:"language,omitempty"`
	Bindings    []bindingView `json:"bindings"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

type bindingView struct {
	ChannelID  string `json:"channel_id"`
	Mode       string `json:"mode"`
	LineID     string `json:"line_id,omitempty"`
	Entity     string `json:"entity,omitempty"`
	CategoryID string `json:"category_id,omitempty"`
	StageID    string `json:"stage_id,omitempty"`
	// Settings are the integration's own options for the binding (for
	// Bitrix24 Open Lines, operator_name), shown as they were stored.
	Settings json.RawMessage `json:"settings,omitempty"`
}

func viewBinding(b *store.ChannelBinding) bindingView {
	v := bindingView{ChannelID: b.ChannelID, Mode: b.Mode, LineID: b.LineID, Entity: b.Entity, CategoryID: b.CategoryID, StageID: b.StageID}
	if b.Settings != nil && json.Valid([]byte(*b.Settings)) {
		v.Settings = json.RawMessage(*b.Settings)
	}
	return v
}

// viewIntegration never includes tokens.
func (s *Server) viewIntegration(c *gin.Context, in *store.Integration) (integrationView, error) {
	v := integrationView{ID: in.ID, WorkspaceID: in.WorkspaceID, Type: in.Type, State: in.State, StateReason: in.StateReason,
		Domain: in.Domain, Language: in.Language, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt, Bindings: []bindingView{}}
	bs, err := s.d.Store.ListBindings(c.Request.Context(), in.ID)
	if err != nil {
		return v, err
	}
	for i := range bs {
		v.Bindings = append(v.Bindings, viewBinding(&bs[i]))
	}
	return v, nil
}

func (s *Server) listIntegrations(c *gin.Context) {
	ins, err := s.d.Store.ListIntegrations(c.Request.Context(), scopeOf(c))
	if err != nil {
		s.failErr(c, err)
		return
	}
	out := make([]integrationView, 0, len(ins))
	for i := range ins {
		v, err := s.viewIntegration(c, &ins[i])
		if err != nil {
			s.failErr(c, err)
			return
		}
		out = append(out, v)
	}
	c.JSON(http.StatusOK, gin.H{"data": out})
}

func (s *Server) getIntegration(c *gin.Context) {
	in, err := s.d.Store.GetIntegration(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	v, err := s.viewIntegration(c, in)
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (s *Server) bindChannel(c *gin.Context) {
	if s.d.Bitrix24 == nil {
		fail(c, http.StatusNotFound, "not_found", "no such integration")
		return
	}
	var req bitrix24.BindRequest
	if !decode(c, &req) {
		return
	}
	b, err := s.d.Bitrix24.Bind(c.Request.Context(), scopeOf(c), c.Param("id"), c.Param("channel_id"), req)
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, viewBinding(b))
}

func (s *Server) unbindChannel(c *gin.Context) {
	if s.d.Bitrix24 == nil {
		fail(c, http.StatusNotFound, "not_found", "no such integration")
		return
	}
	if err := s.d.Bitrix24.Unbind(c.Request.Context(), scopeOf(c), c.Param("id"), c.Param("channel_id")); err != nil {
		s.failErr(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// bitrix24OAuthStart sends an admin to the portal's consent page; the
// portal lands in the workspace of the token that started it.
func (s *Server) bitrix24OAuthStart(c *gin.Context) {
	ws := scopeOf(c).WorkspaceID
	if ws == "" {
		ws = c.Query("workspace_id")
		if ws == "" {
			ws = s.d.DefaultWorkspaceID
		}
		if _, err := s.d.Store.GetWorkspace(c.Request.Context(), store.All, ws); err != nil {
			fail(c, http.StatusNotFound, "workspace_not_found", "no such workspace")
			return
		}
	}
	u, err := s.d.Bitrix24.OAuthStart(c.Request.Context(), ws, c.Query("domain"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.Redirect(http.StatusFound, u)
}
