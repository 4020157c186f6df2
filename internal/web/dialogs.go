package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/store"
)

// dialogView is a dialog as the API shows it. Owner and CRM record are
// null until someone is assigned or a record is linked; times are UTC.
type dialogView struct {
	ID              string         `json:"id"`
	WorkspaceID     string         `json:"workspace_id"`
	IntegrationID   string         `json:"integration_id"`
	ChannelID       string         `json:"channel_id"`
	Customer        *customerView  `json:"customer"`
	Owner           *string        `json:"owner"`
	CRMRecord       *crmRecordView `json:"crm_record"`
	UnreadCount     int            `json:"unread_count"`
	Waiting         bool           `json:"waiting"`
	WaitingSince    *time.Time     `json:"waiting_since"`
	LastInboundAt   *time.Time     `json:"last_inbound_at"`
	LastOutboundAt  *time.Time     `json:"last_outbound_at"`
	LastMessageAt   time.Time      `json:"last_message_at"`
	NoReplyNeededAt *time.Time     `json:"no_reply_needed_at"`
	// EscalatedAt is when everyone with access was last told that the
	// customer waits too long (notify_after_seconds).
	EscalatedAt *time.Time `json:"escalated_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

type crmRecordView struct {
	Entity string `json:"entity"`
	ID     string `json:"id"`
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func viewDialog(d *store.DialogView) dialogView {
	v := dialogView{ID: d.ID, WorkspaceID: d.WorkspaceID, IntegrationID: d.IntegrationID, ChannelID: d.ChannelID,
		UnreadCount: d.UnreadCount, Waiting: d.Waiting, WaitingSince: utc(d.WaitingSince),
		LastInboundAt: utc(d.LastInboundAt), LastOutboundAt: utc(d.LastOutboundAt), LastMessageAt: d.LastMessageAt.UTC(),
		NoReplyNeededAt: utc(d.NoReplyNeededAt), EscalatedAt: utc(d.EscalatedAt), CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if d.OwnerUserID != "" {
		owner := d.OwnerUserID
		v.Owner = &owner
	}
	if d.CRMEntity != "" {
		v.CRMRecord = &crmRecordView{Entity: d.CRMEntity, ID: d.CRMEntityID}
	}
	if ct := d.Contact; ct != nil {
		v.Customer = &customerView{ID: ct.ExternalID, Name: ct.Name, Phone: ct.Phone, Username: ct.Username}
	}
	return v
}

// dialogParams are the query parameters GET /dialogs understands; any
// other is refused, so a misspelt filter does not silently list everything.
var dialogParams = map[string]bool{"integration_id": true, "channel_id": true, "owner": true, "waiting": true, "limit": true, "cursor": true}

// ownerNone filters the unassigned dialogs: CRM user ids are numbers, so
// it names nobody.
const ownerNone = "none"

// maxOwnerLen bounds an owner filter; CRM user ids are short.
const maxOwnerLen = 64

// dialogQuery reads the list's filters, answering 400 with a code naming
// the first bad one.
func dialogQuery(c *gin.Context) (store.DialogFilter, *store.DialogCursor, int, bool) {
	var f store.DialogFilter
	for name := range c.Request.URL.Query() {
		if !dialogParams[name] {
			fail(c, http.StatusBadRequest, "parameter_unknown",
				"unknown query parameter "+strconv.Quote(name)+"; filters are integration_id, channel_id, owner, waiting, limit, cursor")
			return f, nil, 0, false
		}
	}
	if v, ok := c.GetQuery("integration_id"); ok {
		if !store.ValidID(v) {
			fail(c, http.StatusBadRequest, "integration_id_invalid", "integration_id must be an integration's id")
			return f, nil, 0, false
		}
		f.IntegrationID = v
	}
	if v, ok := c.GetQuery("channel_id"); ok {
		if !store.ValidID(v) {
			fail(c, http.StatusBadRequest, "channel_id_invalid", "channel_id must be a channel's id")
			return f, nil, 0, false
		}
		f.ChannelID = v
	}
	if v, ok := c.GetQuery("owner"); ok {
		if v == "" || len(v) > maxOwnerLen || textProblem(v, maxOwnerLen) != "" {
			fail(c, http.StatusBadRequest, "owner_invalid", `owner must be a CRM user id (up to 64 characters), or "none" for unassigned dialogs`)
			return f, nil, 0, false
		}
		if v == ownerNone {
			v = ""
		}
		f.Owner = &v
	}
	if v, ok := c.GetQuery("waiting"); ok {
		var w bool
		switch v {
		case "true":
			w = true
		case "false":
		default:
			fail(c, http.StatusBadRequest, "waiting_invalid", `waiting must be "true" or "false"`)
			return f, nil, 0, false
		}
		f.Waiting = &w
	}
	limit := 50
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			fail(c, http.StatusBadRequest, "limit_invalid", "limit must be a whole number from 1 to 500")
			return f, nil, 0, false
		}
		limit = n
	}
	var after *store.DialogCursor
	if v, ok := c.GetQuery("cursor"); ok {
		cur, err := store.ParseDialogCursor(v)
		if err != nil {
			fail(c, http.StatusBadRequest, "cursor_invalid", "cursor must be a next_cursor value from an earlier page")
			return f, nil, 0, false
		}
		after = &cur
	}
	return f, after, limit, true
}

// listDialogs answers GET /api/v1/dialogs: the most recent activity first.
func (s *Server) listDialogs(c *gin.Context) {
	f, after, limit, ok := dialogQuery(c)
	if !ok {
		return
	}
	ds, next, err := s.d.Store.ListDialogs(c.Request.Context(), scopeOf(c), f, after, limit)
	if err != nil {
		s.failErr(c, err)
		return
	}
	out := make([]dialogView, len(ds))
	for i := range ds {
		out[i] = viewDialog(&ds[i])
	}
	resp := gin.H{"data": out}
	if next != nil {
		resp["next_cursor"] = next.String()
	}
	reply(c, http.StatusOK, resp)
}

// dialogID is the path's id, or a 404 for anything that cannot be one
// (no query is spent on junk).
func dialogID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if !store.ValidID(id) {
		fail(c, http.StatusNotFound, "not_found", "not found")
		return "", false
	}
	return id, true
}

func (s *Server) getDialog(c *gin.Context) {
	id, ok := dialogID(c)
	if !ok {
		return
	}
	d, err := s.d.Store.GetDialog(c.Request.Context(), scopeOf(c), id)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, viewDialog(d))
}

// DialogStopper stops a dialog waiting without an answer and tells the
// CRMs told of the waiting (routing.Router).
type DialogStopper interface {
	NoReplyNeeded(ctx context.Context, scope store.Scope, id string) (*store.DialogView, error)
}

// dialogNoReplyNeeded answers POST /api/v1/dialogs/{id}/no-reply-needed:
// the customer stops waiting without an answer. Repeating it changes
// nothing.
func (s *Server) dialogNoReplyNeeded(c *gin.Context) {
	id, ok := dialogID(c)
	if !ok {
		return
	}
	var d *store.DialogView
	var err error
	if s.d.Dialogs != nil {
		d, err = s.d.Dialogs.NoReplyNeeded(c.Request.Context(), scopeOf(c), id)
	} else {
		d, err = s.d.Store.DialogNoReplyNeeded(c.Request.Context(), scopeOf(c), id)
	}
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, viewDialog(d))
}
