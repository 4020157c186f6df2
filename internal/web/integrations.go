package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/crm"
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
	// Settings are the integration's own options for the binding (for an
	// Open Lines binding, operator_name), shown as they were stored.
	Settings json.RawMessage `json:"settings,omitempty"`
	// Name is the channel's name inside the integration.
	Name string `json:"name,omitempty"`
	// Owner, OnRepeat and Mirror are the routing policy of a binding that
	// writes into CRM records itself (crm mode); owner is absent when new
	// records go to the installing user.
	Owner    json.RawMessage `json:"owner,omitempty"`
	OnRepeat string          `json:"on_repeat,omitempty"`
	Mirror   string          `json:"mirror,omitempty"`
}

func viewBinding(b *store.ChannelBinding) bindingView {
	v := bindingView{ChannelID: b.ChannelID, Mode: b.Mode, LineID: b.LineID, Entity: b.Entity, CategoryID: b.CategoryID, StageID: b.StageID, Name: b.Name}
	if b.Settings != nil && json.Valid([]byte(*b.Settings)) {
		v.Settings = json.RawMessage(*b.Settings)
	}
	// The policy's fields mean something only where the gateway writes
	// the records (an Open Line's are the CRM's own business).
	if b.Mode == "crm" {
		v.OnRepeat, v.Mirror = b.OnRepeat, b.Mirror
		if b.OwnerPolicy != "" && json.Valid([]byte(b.OwnerPolicy)) {
			v.Owner = json.RawMessage(b.OwnerPolicy)
		}
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

// provider is the registered provider of the integration named in the
// path, looked up in the caller's scope; false when it answered already.
// An integration whose type no provider serves is as good as absent.
func (s *Server) provider(c *gin.Context) (crm.Integration, bool) {
	in, err := s.d.Store.GetIntegration(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return nil, false
	}
	p, ok := s.d.Integrations.Get(in.Type)
	if !ok {
		fail(c, http.StatusNotFound, "not_found", "no such integration")
		return nil, false
	}
	return p, true
}

// bindChannel hands the body to the integration's provider, which alone
// knows its fields. The body is read (and its size refused) first, as
// before; it is decoded only once the integration is found.
func (s *Server) bindChannel(c *gin.Context) {
	body, ok := readBody(c)
	if !ok {
		return
	}
	p, ok := s.provider(c)
	if !ok {
		return
	}
	b, err := p.Bind(c.Request.Context(), scopeOf(c), c.Param("id"), c.Param("channel_id"), body)
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, viewBinding(b))
}

func (s *Server) unbindChannel(c *gin.Context) {
	p, ok := s.provider(c)
	if !ok {
		return
	}
	if err := p.Unbind(c.Request.Context(), scopeOf(c), c.Param("id"), c.Param("channel_id")); err != nil {
		s.failErr(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// routes is how integrations mount their handlers on the server.
type routes struct{ s *Server }

// Public mounts h as it is: the integration authenticates its callers.
func (r routes) Public(method, path string, h http.HandlerFunc) {
	r.s.engine.Handle(method, path, gin.WrapF(h))
}

// Workspace mounts h behind the API token (or an owner's or admin's
// cabinet session), for the workspace the call acts for.
func (r routes) Workspace(method, path string, h crm.WorkspaceHandler) {
	s := r.s
	s.engine.Handle(method, path, s.apiOrCabinet, func(c *gin.Context) {
		ws, ok := s.actingWorkspace(c)
		if !ok {
			return
		}
		if err := h(c.Writer, c.Request, ws); err != nil {
			if cabinetOf(c) != nil {
				s.faultPage(c, err) // opened from the cabinet: a page, not JSON
				return
			}
			s.failErr(c, err)
		}
	})
}

// actingWorkspace is the workspace a call to an integration's route acts
// for: the token's own, or for the operator the workspace_id query
// parameter or else the default workspace, which must exist.
func (s *Server) actingWorkspace(c *gin.Context) (string, bool) {
	ws := scopeOf(c).WorkspaceID
	if ws != "" {
		return ws, true
	}
	ws = c.Query("workspace_id")
	if ws == "" {
		ws = s.d.DefaultWorkspaceID
	}
	if _, err := s.d.Store.GetWorkspace(c.Request.Context(), store.All, ws); err != nil {
		fail(c, http.StatusNotFound, "workspace_not_found", "no such workspace")
		return "", false
	}
	return ws, true
}
