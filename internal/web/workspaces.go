package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/store"
)

// updateWorkspace changes a workspace's name, clock and how its people's
// phone numbers are read. A workspace token may change its own workspace.
func (s *Server) updateWorkspace(c *gin.Context) {
	var req struct {
		Name        *string `json:"name"`
		Timezone    *string `json:"timezone"`
		PhoneTrunk8 *bool   `json:"phone_trunk8"`
		PhoneRegion *string `json:"phone_region"`
		// Raw, so that 2.5, "5" or 1e9 get this field's own answer rather
		// than a generic JSON one.
		DialogsPerHourLimit json.RawMessage `json:"dialogs_per_hour_limit"`
	}
	if !decode(c, &req) {
		return
	}
	if !checkOptionalName(c, req.Name) {
		return
	}
	if req.Timezone != nil && !checkTimezone(c, *req.Timezone) {
		return
	}
	if req.PhoneRegion != nil {
		region, err := validPhoneRegion(*req.PhoneRegion)
		if err != nil {
			fe := fault.As(err)
			fail(c, http.StatusUnprocessableEntity, fe.Code, fe.Message)
			return
		}
		*req.PhoneRegion = region
	}
	var limit *int
	if req.DialogsPerHourLimit != nil {
		n, ok := checkDialogLimit(c, req.DialogsPerHourLimit)
		if !ok {
			return
		}
		limit = &n
	}
	w, err := s.patchWorkspace(c.Request.Context(), scopeOf(c), c.Param("id"), store.WorkspaceUpdate{
		Name: req.Name, Timezone: req.Timezone, PhoneTrunk8: req.PhoneTrunk8, PhoneRegion: req.PhoneRegion,
		DialogsPerHourLimit: limit}, limit != nil)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, w)
}

// patchWorkspace writes a checked change of a workspace, for the API and
// the cabinet; a changed dialog limit (limitChanged) wakes the held sends.
func (s *Server) patchWorkspace(ctx context.Context, sc store.Scope, id string, u store.WorkspaceUpdate, limitChanged bool) (*store.Workspace, error) {
	w, err := s.d.Store.UpdateWorkspace(ctx, sc, id, u)
	if err != nil {
		return nil, err
	}
	if limitChanged {
		s.wakeHeld(ctx, w.ID)
	}
	return w, nil
}

// wakeHeld lets the messages held by the dialog limit try again after the
// limit changed, rather than at the next hour: a raised or removed limit
// sends them now, a lowered one holds them again. The change is made by
// then, so a failure here is logged, not answered: they go at the next
// hour as before.
func (s *Server) wakeHeld(ctx context.Context, workspaceID string) {
	keys, err := s.d.Messaging.HeldSendKeys(ctx, workspaceID)
	if err == nil && len(keys) > 0 {
		_, err = s.d.Queue.Wake(ctx, messaging.JobSend, keys)
	}
	if err != nil {
		s.d.Log.Warn("dialog limit changed; held messages wait for the next hour", "workspace_id", workspaceID, "err", err)
	}
}

// checkTimezone is validTimezone for handlers: it answers and returns
// false when tz is refused.
func checkTimezone(c *gin.Context, tz string) bool {
	if err := validTimezone(tz); err != nil {
		fe := fault.As(err)
		fail(c, http.StatusUnprocessableEntity, fe.Code, fe.Message)
		return false
	}
	return true
}

// checkDialogLimit answers and returns false unless raw is a whole number
// from 0 to store.MaxDialogsPerHour, written as one: not a string, a
// fraction, an exponent or null.
func checkDialogLimit(c *gin.Context, raw json.RawMessage) (int, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		n = -1
	}
	if err := validDialogLimit(n, string(raw)); err != nil {
		fe := fault.As(err)
		fail(c, http.StatusUnprocessableEntity, fe.Code, fe.Message)
		return 0, false
	}
	return int(n), true
}

// tokenView shows a token without the token: only its hash is kept.
type tokenView struct {
	ID          string     `json:"id"`
	WorkspaceID string     `json:"workspace_id"`
	Name        string     `json:"name"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

func viewToken(t *store.APIToken) tokenView {
	return tokenView{ID: t.ID, WorkspaceID: t.WorkspaceID, Name: t.Name, CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt}
}

// listTokens shows a workspace's tokens, so a leaked one can be found and
// revoked.
func (s *Server) listTokens(c *gin.Context) {
	ts, err := s.d.Store.ListAPITokens(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	out := make([]tokenView, len(ts))
	for i := range ts {
		out[i] = viewToken(&ts[i])
	}
	reply(c, http.StatusOK, gin.H{"data": out})
}

// revokeToken stops a token from working at once; a workspace token may
// revoke itself.
func (s *Server) revokeToken(c *gin.Context) {
	if !store.ValidID(c.Param("token_id")) {
		fail(c, http.StatusNotFound, "not_found", "no such token")
		return
	}
	t, err := s.d.Store.RevokeAPIToken(c.Request.Context(), scopeOf(c), c.Param("id"), c.Param("token_id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, viewToken(t))
}
