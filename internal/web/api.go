package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/strictjson"
)

// maxJSONBody caps every JSON request of the admin API.
const maxJSONBody = 1 << 20

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors that name the problem.
func decode(c *gin.Context, v any) bool {
	body, ok := readBody(c)
	if !ok {
		return false
	}
	if err := strictjson.Decode(body, v); err != nil {
		fail(c, http.StatusBadRequest, strictjson.Code, fault.As(err).Message)
		return false
	}
	return true
}

// readBody reads a JSON body up to maxJSONBody, for decode or for whoever
// decodes it (a CRM provider binding a channel).
func readBody(c *gin.Context) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
	if err != nil {
		fail(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("JSON bodies are limited to %d bytes", maxJSONBody))
		return nil, false
	}
	return body, true
}

// targetWorkspace is where a new resource goes: the token's workspace, or
// the one the operator names, or the default.
func (s *Server) targetWorkspace(c *gin.Context, requested string) (string, bool) {
	sc := scopeOf(c)
	if sc.WorkspaceID != "" {
		if requested != "" && requested != sc.WorkspaceID {
			fail(c, http.StatusNotFound, "workspace_not_found", "no such workspace")
			return "", false
		}
		return sc.WorkspaceID, true
	}
	if requested == "" {
		return s.d.DefaultWorkspaceID, true
	}
	if !store.ValidID(requested) {
		fail(c, http.StatusNotFound, "workspace_not_found", "no such workspace")
		return "", false
	}
	if _, err := s.d.Store.GetWorkspace(c.Request.Context(), store.All, requested); err != nil {
		fail(c, http.StatusNotFound, "workspace_not_found", "no such workspace")
		return "", false
	}
	return requested, true
}

// ---- workspaces ----

func (s *Server) listWorkspaces(c *gin.Context) {
	ws, err := s.d.Store.ListWorkspaces(c.Request.Context(), scopeOf(c))
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, gin.H{"data": ws})
}

func (s *Server) getWorkspace(c *gin.Context) {
	w, err := s.d.Store.GetWorkspace(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, w)
}

func (s *Server) createWorkspace(c *gin.Context) {
	var req struct {
		Name     string `json:"name"`
		Timezone string `json:"timezone"`
	}
	if !decode(c, &req) {
		return
	}
	name, ok := checkName(c, req.Name)
	if !ok {
		return
	}
	if req.Timezone == "" {
		req.Timezone = "UTC"
	}
	if !checkTimezone(c, req.Timezone) {
		return
	}
	w, err := s.d.Store.CreateWorkspace(c.Request.Context(), name, req.Timezone)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusCreated, w)
}

func (s *Server) createToken(c *gin.Context) {
	w, err := s.d.Store.GetWorkspace(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	var req struct {
		Name string `json:"name"`
	}
	if c.Request.ContentLength != 0 && !decode(c, &req) {
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if p := textProblem(req.Name, maxNameRunes); p != "" {
		fail(c, http.StatusUnprocessableEntity, "name_invalid", "name: "+p)
		return
	}
	plain, t, err := s.d.Store.CreateAPIToken(c.Request.Context(), w.ID, req.Name)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusCreated, gin.H{"id": t.ID, "workspace_id": w.ID, "name": t.Name, "token": plain,
		"note": "the token is shown once; store it now"})
}

// ---- channels ----

type channelView struct {
	ID            string    `json:"id"`
	WorkspaceID   string    `json:"workspace_id"`
	Type          string    `json:"type"`
	Name          string    `json:"name"`
	State         string    `json:"state"`
	StateReason   string    `json:"state_reason,omitempty"`
	PhoneNumberID string    `json:"phone_number_id,omitempty"`
	WabaID        string    `json:"waba_id,omitempty"`
	DisplayPhone  string    `json:"display_phone,omitempty"`
	IGUserID      string    `json:"ig_user_id,omitempty"`
	PageID        string    `json:"page_id,omitempty"`
	SendRate      float64   `json:"send_rate,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`

	// Dialogs is the channel's dialog counter this hour (absent only when
	// it could not be read after a change).
	Dialogs *messaging.DialogCounter `json:"dialogs,omitempty"`
}

// viewChannel never includes the access token.
func viewChannel(ch *store.Channel) channelView {
	v := channelView{ID: ch.ID, WorkspaceID: ch.WorkspaceID, Type: ch.Type, Name: ch.Name, State: ch.State,
		StateReason: ch.StateReason, WabaID: ch.WabaID, DisplayPhone: ch.DisplayPhone, PageID: ch.PageID,
		SendRate: ch.SendRate, CreatedAt: ch.CreatedAt, UpdatedAt: ch.UpdatedAt}
	if ch.Type == string(channel.WhatsApp) {
		v.PhoneNumberID = ch.AccountID
	} else {
		v.IGUserID = ch.AccountID
	}
	return v
}

// replyChannel answers with a channel and its dialog counter. After a
// change (changed), a counter that cannot be read is logged and left out
// rather than reporting an error for a change that was made.
func (s *Server) replyChannel(c *gin.Context, status int, ch *store.Channel, changed bool) {
	v := viewChannel(ch)
	counters, err := s.d.Messaging.DialogCounters(c.Request.Context(), []store.Channel{*ch})
	switch {
	case err == nil:
		d := counters[ch.ID]
		v.Dialogs = &d
	case changed:
		s.d.Log.Warn("channel changed; its dialog counter could not be read", "channel_id", ch.ID, "err", err)
	default:
		s.failErr(c, err)
		return
	}
	reply(c, status, v)
}

type channelRequest struct {
	Type          string   `json:"type"`
	Name          *string  `json:"name"`
	WorkspaceID   string   `json:"workspace_id"`
	PhoneNumberID string   `json:"phone_number_id"`
	WabaID        *string  `json:"waba_id"`
	DisplayPhone  *string  `json:"display_phone"`
	IGUserID      string   `json:"ig_user_id"`
	PageID        *string  `json:"page_id"`
	AccessToken   *string  `json:"access_token"`
	SendRate      *float64 `json:"send_rate"`
	State         *string  `json:"state"`
}

func digitsOnly(s string) bool {
	if s == "" || len(s) > maxIDDigits {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// invalid is a 422 refusal of one field.
func invalid(field, code, msg string) error {
	return &fault.Error{Kind: fault.Invalid, Code: code, Message: msg, Field: field}
}

// checkOptional validates the optional fields create and PATCH share,
// trimming the token in place; the first problem is returned.
func checkOptional(req *channelRequest) error {
	if req.WabaID != nil && !digitsOnly(*req.WabaID) {
		return invalid("waba_id", "waba_id_invalid", "waba_id is the WhatsApp Business Account id (digits) that owns the number, from WhatsApp Manager")
	}
	if req.PageID != nil && *req.PageID != "" && !digitsOnly(*req.PageID) {
		return invalid("page_id", "page_id_invalid", "page_id is the id (digits) of the Facebook Page linked to the Instagram account")
	}
	if req.DisplayPhone != nil {
		if p := displayPhoneProblem(*req.DisplayPhone); p != "" {
			return invalid("display_phone", "display_phone_invalid", p)
		}
	}
	if req.AccessToken != nil {
		*req.AccessToken = strings.TrimSpace(*req.AccessToken)
		if p := tokenProblem(*req.AccessToken); p != "" {
			return invalid("access_token", "access_token_invalid", p)
		}
	}
	return nil
}

func (s *Server) createChannel(c *gin.Context) {
	var req channelRequest
	if !decode(c, &req) {
		return
	}
	ch, err := s.newChannel(c.Request.Context(), scopeOf(c), req, func() (string, bool) { return s.targetWorkspace(c, req.WorkspaceID) })
	if err != nil {
		if !c.IsAborted() {
			s.failErr(c, err)
		}
		return
	}
	s.replyChannel(c, http.StatusCreated, ch, true)
}

// errAnswered: the workspace lookup answered the request already.
var errAnswered = errors.New("web: answered")

// newChannel is adding a channel, for the API and the cabinet alike:
// every field checked, the account proven with Meta, then stored. target
// picks the workspace once the fields are valid (false: it answered).
func (s *Server) newChannel(ctx context.Context, sc store.Scope, req channelRequest, target func() (string, bool)) (*store.Channel, error) {
	ch := &store.Channel{Type: req.Type}
	switch channel.Type(req.Type) {
	case channel.WhatsApp:
		if p := phoneNumberIDProblem(req.PhoneNumberID); p != "" {
			return nil, invalid("phone_number_id", "phone_number_id_invalid", p)
		}
		if req.IGUserID != "" || req.PageID != nil {
			return nil, fault.New(fault.Invalid, "field_not_allowed", "ig_user_id and page_id belong to instagram channels")
		}
		ch.AccountID = req.PhoneNumberID
	case channel.Instagram:
		if !digitsOnly(req.IGUserID) {
			return nil, invalid("ig_user_id", "ig_user_id_invalid", "ig_user_id is required: the Instagram professional account id (digits)")
		}
		if req.PhoneNumberID != "" || req.WabaID != nil || req.DisplayPhone != nil {
			return nil, fault.New(fault.Invalid, "field_not_allowed", "phone_number_id, waba_id and display_phone belong to whatsapp channels")
		}
		ch.AccountID = req.IGUserID
	default:
		return nil, invalid("type", "type_invalid", `type must be "whatsapp" or "instagram"`)
	}
	if req.Name == nil {
		return nil, invalid("name", "name_invalid", fmt.Sprintf("name is required, up to %d characters", maxNameRunes))
	}
	name, err := validName(*req.Name)
	if err != nil {
		fault.As(err).Field = "name"
		return nil, err
	}
	if req.AccessToken == nil || strings.TrimSpace(*req.AccessToken) == "" {
		return nil, invalid("access_token", "access_token_required", "access_token is required")
	}
	if err := checkOptional(&req); err != nil {
		return nil, err
	}
	// Webhooks name the WABA; the gateway stores a number's messages only
	// when they come from the WABA the number was proven to belong to.
	// Graph has no read that gives a number's WABA, so it is asked for.
	if ch.Type == string(channel.WhatsApp) && req.WabaID == nil {
		return nil, invalid("waba_id", "waba_id_required", "waba_id is required for whatsapp: the WhatsApp Business Account id (digits) that owns the number, from WhatsApp Manager")
	}
	if req.State != nil {
		return nil, fault.New(fault.Invalid, "field_not_allowed", "a new channel is always active")
	}
	if req.SendRate != nil && (*req.SendRate <= 0 || *req.SendRate > 1000) {
		return nil, invalid("send_rate", "send_rate_invalid", "send_rate is messages per second, above 0 and at most 1000")
	}
	ws, ok := target()
	if !ok {
		return nil, errAnswered
	}
	ch.WorkspaceID, ch.Name = ws, name
	for dst, src := range map[*string]*string{&ch.WabaID: req.WabaID, &ch.DisplayPhone: req.DisplayPhone, &ch.PageID: req.PageID} {
		if src != nil {
			*dst = *src
		}
	}
	if req.SendRate != nil {
		ch.SendRate = *req.SendRate
	}
	acc, err := s.proveOwnership(ctx, claim{typ: channel.Type(ch.Type), accountID: ch.AccountID, owner: ch.WabaID,
		token: *req.AccessToken, workspace: ws, held: true, operator: sc.WorkspaceID == ""})
	if err != nil {
		return nil, err
	}
	if ch.DisplayPhone == "" && displayPhoneProblem(acc.DisplayPhone) == "" {
		ch.DisplayPhone = acc.DisplayPhone
	}
	err = s.d.Store.CreateChannel(ctx, ch, *req.AccessToken)
	if errors.Is(err, store.ErrConflict) {
		// Only the workspace's own channel (or, for the operator, any) can
		// be the conflict: another workspace's was refused above.
		return nil, fault.New(fault.Conflict, "channel_exists", "an active channel with this account id exists already")
	}
	if err != nil {
		return nil, err
	}
	return ch, nil
}

func (s *Server) listChannels(c *gin.Context) {
	sc := scopeOf(c)
	if ws := c.Query("workspace_id"); ws != "" {
		if sc.WorkspaceID != "" && ws != sc.WorkspaceID {
			fail(c, http.StatusNotFound, "workspace_not_found", "no such workspace")
			return
		}
		sc = store.Scope{WorkspaceID: ws}
	}
	chs, err := s.d.Store.ListChannels(c.Request.Context(), sc)
	if err != nil {
		s.failErr(c, err)
		return
	}
	counters, err := s.d.Messaging.DialogCounters(c.Request.Context(), chs)
	if err != nil {
		s.failErr(c, err)
		return
	}
	out := make([]channelView, len(chs))
	for i := range chs {
		out[i] = viewChannel(&chs[i])
		d := counters[chs[i].ID]
		out[i].Dialogs = &d
	}
	reply(c, http.StatusOK, gin.H{"data": out})
}

func (s *Server) getChannel(c *gin.Context) {
	ch, err := s.d.Store.GetChannel(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	s.replyChannel(c, http.StatusOK, ch, false)
}

func (s *Server) updateChannel(c *gin.Context) {
	var req channelRequest
	if !decode(c, &req) {
		return
	}
	ch, err := s.changeChannel(c.Request.Context(), scopeOf(c), c.Param("id"), req)
	if err != nil {
		s.failErr(c, err)
		return
	}
	s.replyChannel(c, http.StatusOK, ch, true)
}

// changeChannel is a PATCH of a channel, for the API and the cabinet
// alike: a new token, WABA or a comeback is proven with Meta first.
func (s *Server) changeChannel(ctx context.Context, sc store.Scope, id string, req channelRequest) (*store.Channel, error) {
	if req.Type != "" || req.PhoneNumberID != "" || req.IGUserID != "" || req.WorkspaceID != "" {
		return nil, fault.New(fault.Invalid, "field_immutable", "type, account ids and workspace cannot change here; create a new channel (the operator moves channels with POST /api/v1/channels/{id}/move)")
	}
	if req.Name != nil {
		name, err := validName(*req.Name)
		if err != nil {
			fault.As(err).Field = "name"
			return nil, err
		}
		req.Name = &name
	}
	if err := checkOptional(&req); err != nil {
		return nil, err
	}
	if req.State != nil && *req.State != store.ChannelActive && *req.State != store.ChannelDisabled {
		return nil, invalid("state", "state_invalid", `state can be set to "active" or "disabled"`)
	}
	if req.SendRate != nil && (*req.SendRate < 0 || *req.SendRate > 1000) {
		return nil, invalid("send_rate", "send_rate_invalid", "send_rate is messages per second, 0 (default) to 1000")
	}
	ch, err := s.d.Store.GetChannel(ctx, sc, id)
	if err != nil {
		return nil, err
	}
	typ := channel.Type(ch.Type)
	if typ == channel.WhatsApp && req.PageID != nil || typ == channel.Instagram && (req.WabaID != nil || req.DisplayPhone != nil) {
		return nil, fault.New(fault.Invalid, "field_not_allowed", "waba_id and display_phone belong to whatsapp channels, page_id to instagram ones")
	}
	// A new token, a new WABA or a channel coming back to work is a claim
	// on the account again, proven like a new channel's.
	activating := req.State != nil && *req.State == store.ChannelActive && ch.State != store.ChannelActive
	if req.AccessToken != nil || req.WabaID != nil || activating {
		cl := claim{typ: typ, accountID: ch.AccountID, owner: ch.WabaID, workspace: ch.WorkspaceID,
			held: activating && ch.State == store.ChannelDisabled, operator: sc.WorkspaceID == ""}
		if req.WabaID != nil {
			cl.owner = *req.WabaID
		}
		if typ == channel.WhatsApp && cl.owner == "" {
			return nil, invalid("waba_id", "waba_id_required", "this channel has no waba_id yet: send it with this change (the WhatsApp Business Account id that owns the number)")
		}
		if req.AccessToken != nil {
			cl.token = *req.AccessToken
		} else {
			creds, err := s.d.Store.Credentials(ch)
			if err != nil {
				return nil, err
			}
			cl.token = creds.AccessToken
		}
		if _, err := s.proveOwnership(ctx, cl); err != nil {
			return nil, err
		}
	}
	ch, err = s.d.Store.UpdateChannel(ctx, sc, id, store.ChannelUpdate{
		Name: req.Name, DisplayPhone: req.DisplayPhone, WabaID: req.WabaID, PageID: req.PageID,
		AccessToken: req.AccessToken, SendRate: req.SendRate, State: req.State,
	})
	if errors.Is(err, store.ErrConflict) {
		// Another workspace's channel was refused by the claim above (a
		// disabled channel coming back checks that no other workspace
		// holds the number), so the one in the way is this workspace's.
		return nil, fault.New(fault.Conflict, "channel_exists", "another active channel uses this account id")
	}
	return ch, err
}

func (s *Server) disableChannel(c *gin.Context) {
	st := store.ChannelDisabled
	ch, err := s.d.Store.UpdateChannel(c.Request.Context(), scopeOf(c), c.Param("id"), store.ChannelUpdate{State: &st})
	if err != nil {
		s.failErr(c, err)
		return
	}
	s.replyChannel(c, http.StatusOK, ch, true)
}

// ---- messages ----

type messageView struct {
	ID          string          `json:"id"`
	ChannelID   string          `json:"channel_id"`
	Direction   string          `json:"direction"`
	Type        string          `json:"type"`
	Text        string          `json:"text,omitempty"`
	Media       *mediaView      `json:"media,omitempty"`
	Status      string          `json:"status"`
	ExternalID  string          `json:"external_id,omitempty"`
	Customer    *customerView   `json:"customer,omitempty"`
	Quoted      *quotedView     `json:"quoted,omitempty"`
	Template    json.RawMessage `json:"template,omitempty"`
	Extra       json.RawMessage `json:"extra,omitempty"`
	Error       *errorView      `json:"error,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	ProviderAt  *time.Time      `json:"provider_at,omitempty"`
	SentAt      *time.Time      `json:"sent_at,omitempty"`
	DeliveredAt *time.Time      `json:"delivered_at,omitempty"`
	ReadAt      *time.Time      `json:"read_at,omitempty"`
	FailedAt    *time.Time      `json:"failed_at,omitempty"`
	// HeldUntil: the channel's dialog limit holds this queued message
	// until then.
	HeldUntil *time.Time `json:"held_until,omitempty"`
}

type mediaView struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	MimeType string `json:"mime_type,omitempty"`
	Size     int64  `json:"size,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Filename string `json:"filename,omitempty"`
	URL      string `json:"url,omitempty"`
	Error    string `json:"error,omitempty"`
}

type customerView struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Phone    string `json:"phone,omitempty"`
	Username string `json:"username,omitempty"`
}

type quotedView struct {
	MessageID  string `json:"message_id,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
}

type errorView struct {
	Code   int    `json:"code,omitempty"`
	Title  string `json:"title,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func (s *Server) viewMessage(m *store.MessageView) messageView {
	v := messageView{ID: m.ID, ChannelID: m.ChannelID, Direction: m.Direction, Type: m.Type, Text: m.Text,
		Status: m.Status, CreatedAt: m.CreatedAt, ProviderAt: m.ProviderAt, SentAt: m.SentAt,
		DeliveredAt: m.DeliveredAt, ReadAt: m.ReadAt, FailedAt: m.FailedAt}
	if m.Status == string(channel.StatusQueued) {
		v.HeldUntil = m.HeldUntil
	}
	if m.ExternalID != nil {
		v.ExternalID = *m.ExternalID
	}
	if m.Contact != nil {
		v.Customer = &customerView{ID: m.Contact.ExternalID, Name: m.Contact.Name, Phone: m.Contact.Phone, Username: m.Contact.Username}
	}
	if m.QuotedExternalID != "" || m.QuotedMessageID != nil {
		v.Quoted = &quotedView{ExternalID: m.QuotedExternalID}
		if m.QuotedMessageID != nil {
			v.Quoted.MessageID = *m.QuotedMessageID
		}
	}
	if m.Template != nil {
		v.Template = json.RawMessage(*m.Template)
	}
	if m.Extra != nil && json.Valid([]byte(*m.Extra)) {
		v.Extra = json.RawMessage(*m.Extra)
	}
	if m.ErrorCode != 0 || m.ErrorTitle != "" || m.ErrorDetail != "" {
		v.Error = &errorView{Code: m.ErrorCode, Title: m.ErrorTitle, Detail: m.ErrorDetail}
	}
	if md := m.Media; md != nil {
		mv := &mediaView{ID: md.ID, State: md.State, MimeType: md.MimeType, Size: md.Size, SHA256: md.SHA256, Filename: md.Filename, Error: md.Error}
		switch md.State {
		case store.MediaStored:
			mv.URL = s.d.Signer.URL(md.ID)
		case store.MediaRemote:
			mv.URL = md.SourceURL
		}
		v.Media = mv
	}
	return v
}

func (s *Server) listMessages(c *gin.Context) {
	limit := 50
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			fail(c, http.StatusBadRequest, "limit_invalid", "limit must be a whole number from 1 to 500")
			return
		}
		limit = n
	}
	cursor := c.Query("cursor")
	if cursor != "" && !store.ValidID(cursor) {
		fail(c, http.StatusBadRequest, "cursor_invalid", "cursor must be a next_cursor value from an earlier page")
		return
	}
	ms, next, err := s.d.Store.ListMessages(c.Request.Context(), scopeOf(c), c.Param("id"), cursor, limit)
	if err != nil {
		s.failErr(c, err)
		return
	}
	out := make([]messageView, len(ms))
	for i := range ms {
		out[i] = s.viewMessage(&ms[i])
		if err := s.heldOnClock(c.Request.Context(), &ms[i], &out[i]); err != nil {
			s.failErr(c, err)
			return
		}
	}
	resp := gin.H{"data": out}
	if next != "" {
		resp["next_cursor"] = next
	}
	reply(c, http.StatusOK, resp)
}

func (s *Server) getMessage(c *gin.Context) {
	m, err := s.d.Store.GetMessage(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	v := s.viewMessage(m)
	if err := s.heldOnClock(c.Request.Context(), m, &v); err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, v)
}

// heldOnClock shows a held message's held_until on its workspace's clock,
// like the channel's dialogs.paused_until: one instant, one way of writing
// it on both.
func (s *Server) heldOnClock(ctx context.Context, m *store.MessageView, v *messageView) error {
	if v.HeldUntil == nil {
		return nil
	}
	loc, err := s.d.Messaging.Clock(ctx, m.WorkspaceID)
	if err != nil {
		return err
	}
	t := v.HeldUntil.In(loc)
	v.HeldUntil = &t
	return nil
}

// sendMessage takes JSON, or multipart/form-data with a "file" part.
func (s *Server) sendMessage(c *gin.Context) {
	var req messaging.SendRequest
	if strings.HasPrefix(c.ContentType(), "multipart/form-data") {
		if !s.readMultipart(c, &req) {
			return
		}
	} else if !decode(c, &req) {
		return
	}
	req.Author = &store.MessageAuthor{Kind: store.AuthorAPI}
	m, err := s.d.Messaging.Send(c.Request.Context(), scopeOf(c), c.Param("id"), req)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusAccepted, gin.H{"id": m.ID, "status": m.Status})
}

func (s *Server) readMultipart(c *gin.Context, req *messaging.SendRequest) bool {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.d.UploadMaxBytes+(1<<20))
	if err := c.Request.ParseMultipartForm(32 << 20); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("uploads are limited to %d bytes", s.d.UploadMaxBytes))
			return false
		}
		fail(c, http.StatusBadRequest, "multipart_invalid", "multipart body: "+err.Error())
		return false
	}
	req.To, req.Text, req.ReplyTo = c.PostForm("to"), c.PostForm("text"), c.PostForm("reply_to")
	fh, err := c.FormFile("file")
	if err != nil {
		fail(c, http.StatusBadRequest, "file_required", `multipart sends need a "file" part`)
		return false
	}
	f, err := fh.Open()
	if err != nil {
		s.failErr(c, err)
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, s.d.UploadMaxBytes+1))
	if err != nil {
		s.failErr(c, err)
		return false
	}
	if int64(len(data)) > s.d.UploadMaxBytes {
		fail(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("uploads are limited to %d bytes", s.d.UploadMaxBytes))
		return false
	}
	req.Upload = &messaging.Upload{Filename: fh.Filename, MimeType: fh.Header.Get("Content-Type"), Data: data}
	req.Media = &messaging.SendMedia{Caption: c.PostForm("caption"), Type: c.PostForm("type"), Filename: fh.Filename}
	return true
}

func (s *Server) queueStats(c *gin.Context) {
	st, err := s.d.Queue.Stats(c.Request.Context())
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, gin.H{"jobs": st})
}
