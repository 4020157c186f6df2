package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// crmUserView is a CRM user as the settings show it; read-only, the CRM
// is its source (POST …/refresh reads it again).
type crmUserView struct {
	UserID    string    `json:"user_id"`
	Name      string    `json:"name"`
	Email     string    `json:"email,omitempty"`
	Active    bool      `json:"active"`
	UpdatedAt time.Time `json:"updated_at"`
}

// settingsView is GET /api/v1/integrations/{id}/settings. A PUT takes the
// same document back: users is ignored there (read-only), every other
// field left out keeps its value.
type settingsView struct {
	Users              []crmUserView        `json:"users"`
	AccessMode         string               `json:"access_mode"`
	Access             []routing.UserAccess `json:"access"`
	Visibility         string               `json:"visibility"`
	ChatAdminUserID    string               `json:"chat_admin_user_id"`
	NotifyAfterSeconds int                  `json:"notify_after_seconds"`
}

// settingsRequest is PUT's body. Pointers tell "left out" from a value.
type settingsRequest struct {
	// Users is accepted so that a GET's document can be PUT back as it
	// is; it is never written (the CRM is the source of users).
	Users              json.RawMessage       `json:"users"`
	AccessMode         *string               `json:"access_mode"`
	Access             *[]routing.UserAccess `json:"access"`
	Visibility         *string               `json:"visibility"`
	ChatAdminUserID    *string               `json:"chat_admin_user_id"`
	NotifyAfterSeconds *int                  `json:"notify_after_seconds"`
}

// settingsState is what a settings handler reads before changing
// anything: the integration in the caller's scope, its settings, users,
// bound channels and matrix (rows of unbound channels left out: they are
// neither shown nor kept by a change).
type settingsState struct {
	in       *store.Integration
	settings routing.IntegrationSettings
	ac       routing.AccessContext
	matrix   []store.ChannelAccess
	bindings []store.ChannelBinding
}

// settingsState loads the state of the integration named in the path;
// false when it answered already. Another workspace's integration is a
// 404, as if it did not exist.
func (s *Server) settingsState(c *gin.Context) (*settingsState, bool) {
	st, err := s.loadSettings(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return nil, false
	}
	return st, true
}

// loadSettings reads an integration's settings state in a scope, for the
// API and the cabinet alike.
func (s *Server) loadSettings(ctx context.Context, sc store.Scope, id string) (*settingsState, error) {
	in, err := s.d.Store.GetIntegration(ctx, sc, id)
	if err != nil {
		return nil, err
	}
	st := &settingsState{in: in}
	if st.settings, err = routing.SettingsOf(in); err != nil {
		// Stored settings that no longer decode: shown and changed from
		// the defaults, so that an admin can repair them with a PUT.
		s.d.Log.Warn("integration settings do not decode", "integration_id", in.ID, "err", err)
	}
	if st.ac.Users, err = s.d.Store.CRMUsers(ctx, in.ID); err != nil {
		return nil, err
	}
	bs, err := s.d.Store.ListBindings(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	bound := map[string]bool{}
	for _, b := range bs {
		st.ac.Bound = append(st.ac.Bound, b.ChannelID)
		bound[b.ChannelID] = true
	}
	st.bindings = bs
	all, err := s.d.Store.AccessMatrix(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if bound[r.ChannelID] {
			st.matrix = append(st.matrix, r)
		}
	}
	return st, nil
}

func (st *settingsState) view() settingsView {
	v := settingsView{Users: []crmUserView{}, AccessMode: st.settings.AccessMode, Access: routing.AccessView(st.matrix),
		Visibility: st.settings.Visibility, ChatAdminUserID: st.settings.ChatAdminUserID, NotifyAfterSeconds: st.settings.NotifyAfterSeconds}
	for _, u := range st.ac.Users {
		v.Users = append(v.Users, crmUserView{UserID: u.UserID, Name: u.Name, Email: u.Email, Active: u.Active, UpdatedAt: u.UpdatedAt.UTC()})
	}
	return v
}

// known is any user the CRM listed, active or not.
func (st *settingsState) known(id string) bool {
	for _, u := range st.ac.Users {
		if u.UserID == id {
			return true
		}
	}
	return false
}

// policyFault turns the routing core's refusal into the API's: 422 with
// the code, the message naming the field, and the field on its own (as
// binding errors have it) for clients that point at the refused value.
func policyFault(err error) error {
	var pe *routing.PolicyError
	if errors.As(err, &pe) {
		return &fault.Error{Kind: fault.Invalid, Code: pe.Code, Message: pe.Error(), Field: pe.Field, Err: err}
	}
	return err
}

// store writes settings (and the matrix unless nil) into st.
func (s *Server) storeSettings(ctx context.Context, st *settingsState, access *[]store.ChannelAccess) error {
	if err := s.d.Store.PutRoutingSettings(ctx, st.in.ID, st.settings.Encode(), access); err != nil {
		return err
	}
	if access != nil {
		st.matrix = *access
	}
	return nil
}

// answerSettings answers the settings as they now are, or the error.
func (s *Server) answerSettings(c *gin.Context, st *settingsState, err error) {
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, st.view())
}

func (s *Server) getSettings(c *gin.Context) {
	st, ok := s.settingsState(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, st.view())
}

func (s *Server) putSettings(c *gin.Context) {
	var req settingsRequest
	if !decode(c, &req) {
		return
	}
	st, ok := s.settingsState(c)
	if !ok {
		return
	}
	s.answerSettings(c, st, s.changeSettings(c.Request.Context(), st, req))
}

// changeSettings validates everything first and writes in one
// transaction, so a refusal changes nothing. Writing access switches the
// integration to the matrix; access_mode "open" (with no access rows)
// opens it again. The API's PUT and the cabinet's form both come here.
func (s *Server) changeSettings(ctx context.Context, st *settingsState, req settingsRequest) error {
	next, access, err := checkSettings(st, req)
	if err != nil {
		return err
	}
	st.settings = next
	return s.storeSettings(ctx, st, access)
}

// checkSettings validates a change of st's settings without writing it:
// the settings it makes, and the matrix to store (nil: unchanged).
func checkSettings(st *settingsState, req settingsRequest) (routing.IntegrationSettings, *[]store.ChannelAccess, error) {
	next := st.settings
	if req.Visibility != nil {
		next.Visibility = *req.Visibility
	}
	if req.ChatAdminUserID != nil {
		next.ChatAdminUserID = *req.ChatAdminUserID
	}
	if req.NotifyAfterSeconds != nil {
		next.NotifyAfterSeconds = *req.NotifyAfterSeconds
	}
	if req.AccessMode != nil {
		next.AccessMode = *req.AccessMode
	}
	if err := next.Validate(st.known); err != nil {
		return next, nil, policyFault(err)
	}
	var access *[]store.ChannelAccess
	switch {
	case req.Access != nil:
		rows, err := routing.ValidateAccess(*req.Access, st.ac)
		if err != nil {
			return next, nil, policyFault(err)
		}
		if next.AccessMode == routing.AccessModeOpen && req.AccessMode != nil {
			if len(rows) > 0 {
				return next, nil, &fault.Error{Kind: fault.Invalid, Code: routing.CodeAccessModeAccess, Field: "access_mode",
					Message: `access_mode: "open" lets everyone send; it takes no access rows (send "access": [] or leave it out)`}
			}
		} else {
			next.AccessMode = routing.AccessModeMatrix
		}
		access = &rows
	case req.AccessMode != nil && next.AccessMode == routing.AccessModeOpen:
		// Opening clears the matrix: rows left behind would still apply.
		access = &[]store.ChannelAccess{}
	}
	return next, access, nil
}

// bulkAccess is POST …/access/bulk: add_all or remove_all, for one
// channel or the whole matrix. It switches the integration to the matrix.
func (s *Server) bulkAccess(c *gin.Context) {
	var req routing.BulkAccess
	if !decode(c, &req) {
		return
	}
	st, ok := s.settingsState(c)
	if !ok {
		return
	}
	s.answerSettings(c, st, s.applyBulk(c.Request.Context(), st, req))
}

// applyBulk is a bulk change of the matrix, for the API and the cabinet.
func (s *Server) applyBulk(ctx context.Context, st *settingsState, req routing.BulkAccess) error {
	rows, err := req.Apply(st.matrix, st.ac)
	if err != nil {
		return policyFault(err)
	}
	st.settings.AccessMode = routing.AccessModeMatrix
	return s.storeSettings(ctx, st, &rows)
}

// refreshIntegration reads the CRM's users again, now, through the
// integration's client, and answers the settings with them.
func (s *Server) refreshIntegration(c *gin.Context) {
	st, ok := s.settingsState(c)
	if !ok {
		return
	}
	s.answerSettings(c, st, s.refreshUsers(c.Request.Context(), st))
}

// refreshUsers reads the CRM's users again into st.
func (s *Server) refreshUsers(ctx context.Context, st *settingsState) error {
	users, err := s.d.Integrations.RefreshUsers(ctx, s.d.Store, st.in)
	if err != nil {
		return err
	}
	st.ac.Users = users
	return nil
}
