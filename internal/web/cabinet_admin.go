package web

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// mountCabinetAdmin adds the owner's and admin's pages: channels and
// integrations with their settings. g is signed in, CSRF-checked and
// admin-only.
func (s *Server) mountCabinetAdmin(g *gin.RouterGroup) {
	g.GET("/channels", s.channelsPage)
	g.POST("/channels", s.addChannelPage)
	g.POST("/channels/:channel_id/token", s.channelTokenPage)
	g.POST("/channels/:channel_id/disable", s.disableChannelPage)
	g.GET("/integrations", s.integrationsPage)
	g.GET("/integrations/:integration_id", s.integrationPage)
	g.POST("/integrations/:integration_id/:action", s.integrationActionPage)
}

// adminPage is what the channels and integrations pages add to page.
type adminPage struct {
	ChannelList []channelPageRow
	ChannelForm channelForm
	WebhookURL  string
	VerifyToken string
	Refused     *problem
	Integrated  []integrationPageRow
	Settings    *settingsForm
	// Providers are the CRM types an integration can be connected with.
	Providers []providerRow
}

// channelPageRow is a channel as the channels page lists it.
type channelPageRow struct {
	channelRow
	ID, Account, WabaID           string
	Active                        bool
	DialogsThisHour, DialogsLimit int
	PausedUntil                   string
}

// channelForm is what the add-channel form sent, shown again on a refusal
// (never the token).
type channelForm struct {
	Type, Name, PhoneNumberID, WabaID, DisplayPhone, IGUserID, PageID string
}

// problem is a refusal shown on a page: the text in the reader's
// language, the field it names (for the form to mark) and the code.
type problem struct {
	Text, Field, Code, ChannelID string
}

// problemOf turns a shared code path's refusal into the page's words:
// the code's text in the reader's language, else the message as it came.
func problemOf(t map[string]string, err error) *problem {
	fe := fault.As(err)
	if fe == nil {
		return nil
	}
	p := &problem{Text: fe.Message, Field: fe.Field, Code: fe.Code}
	if txt, ok := t["e_"+fe.Code]; ok {
		p.Text = txt
	}
	return p
}

// channelsPage lists the workspace's channels with the form to add one.
func (s *Server) channelsPage(c *gin.Context) {
	p := s.newPage(c, "channels")
	switch done := c.Query("done"); done {
	case "channel_added", "token_replaced", "channel_disabled":
		p.Notice = p.T[done]
	}
	s.renderChannels(c, http.StatusOK, p)
}

func (s *Server) renderChannels(c *gin.Context, status int, p *page) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	chs, err := s.d.Store.ListChannels(ctx, store.Scope{WorkspaceID: cc.Workspace.ID})
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
	counters, err := s.d.Messaging.DialogCounters(ctx, chs)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	for _, ch := range chs {
		r := channelPageRow{channelRow: channelRow{Name: ch.Name, Type: ch.Type, State: ch.State, StateLabel: stateLabel(p.T, ch.State),
			Reason: ch.StateReason, LastInbound: p.T["never"], Messages24h: act[ch.ID].Messages24h},
			ID: ch.ID, Account: ch.AccountID, WabaID: ch.WabaID, Active: ch.State != store.ChannelDisabled}
		if ch.Type == string(channel.WhatsApp) && ch.DisplayPhone != "" {
			r.Account = ch.DisplayPhone + " · " + ch.AccountID
		}
		if at := act[ch.ID].LastInboundAt; at != nil {
			r.LastInbound = when(*at, p.TZ, p.Lang)
		}
		r.LastWebhook = p.T["never"]
		if at := act[ch.ID].LastWebhookAt; at != nil {
			r.LastWebhook = when(*at, p.TZ, p.Lang)
		}
		d := counters[ch.ID]
		r.DialogsThisHour, r.DialogsLimit = d.ThisHour, d.Limit
		if d.PausedUntil != nil {
			r.PausedUntil = when(*d.PausedUntil, p.TZ, p.Lang)
		}
		p.ChannelList = append(p.ChannelList, r)
	}
	p.Back = "/channels" // a refused form's page switches language back here
	p.WebhookURL = strings.TrimRight(s.d.PublicURL, "/") + "/webhooks/meta"
	p.VerifyToken = s.d.MetaVerifyToken
	if p.ChannelForm.Type == "" {
		p.ChannelForm.Type = string(channel.WhatsApp)
	}
	s.render(c, status, "channels", p)
}

// optional is nil for an empty form field: the API's "left out".
func optional(v string) *string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	return &v
}

// addChannelPage adds a channel through the API's own code path.
func (s *Server) addChannelPage(c *gin.Context) {
	cc := cabinetOf(c)
	p := s.newPage(c, "channels")
	f := channelForm{Type: c.PostForm("type"), Name: c.PostForm("name"), PhoneNumberID: strings.TrimSpace(c.PostForm("phone_number_id")),
		WabaID: c.PostForm("waba_id"), DisplayPhone: c.PostForm("display_phone"), IGUserID: strings.TrimSpace(c.PostForm("ig_user_id")),
		PageID: c.PostForm("page_id")}
	name := f.Name
	req := channelRequest{Type: f.Type, Name: &name, AccessToken: optional(c.PostForm("access_token"))}
	switch channel.Type(f.Type) {
	case channel.WhatsApp:
		req.PhoneNumberID, req.WabaID, req.DisplayPhone = f.PhoneNumberID, optional(f.WabaID), optional(f.DisplayPhone)
	case channel.Instagram:
		req.IGUserID, req.PageID = f.IGUserID, optional(f.PageID)
	}
	ws := cc.Workspace.ID
	_, err := s.newChannel(c.Request.Context(), store.Scope{WorkspaceID: ws}, req, func() (string, bool) { return ws, true })
	if pr := problemOf(p.T, err); pr != nil {
		p.ChannelForm, p.Refused = f, pr
		s.renderChannels(c, httperr.Status(fault.As(err).Kind), p)
		return
	}
	if err != nil {
		s.pageErr(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/channels?done=channel_added")
	c.Abort()
}

// channelTokenPage replaces a channel's token, proven with Meta first as
// the API's PATCH does.
func (s *Server) channelTokenPage(c *gin.Context) {
	tok := c.PostForm("access_token")
	s.changeChannelPage(c, channelRequest{AccessToken: &tok}, "token_replaced")
}

// disableChannelPage switches a channel off.
func (s *Server) disableChannelPage(c *gin.Context) {
	st := store.ChannelDisabled
	s.changeChannelPage(c, channelRequest{State: &st}, "channel_disabled")
}

func (s *Server) changeChannelPage(c *gin.Context, req channelRequest, done string) {
	cc := cabinetOf(c)
	p := s.newPage(c, "channels")
	id := c.Param("channel_id")
	if !store.ValidID(id) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return
	}
	_, err := s.changeChannel(c.Request.Context(), store.Scope{WorkspaceID: cc.Workspace.ID}, id, req)
	if pr := problemOf(p.T, err); pr != nil {
		pr.ChannelID = id
		p.Refused = pr
		s.renderChannels(c, httperr.Status(fault.As(err).Kind), p)
		return
	}
	if err != nil {
		s.pageErr(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/channels?done="+done)
	c.Abort()
}

// On says whether the refusal names field (nil: no refusal), for the
// form to mark the input.
func (p *problem) On(field string) bool { return p != nil && p.Field == field }

// faultPage shows a refusal from a shared code path as a cabinet page, in
// both languages (the code's texts, else the message as it came).
func (s *Server) faultPage(c *gin.Context, err error) {
	fe := fault.As(err)
	if fe == nil {
		s.pageErr(c, err)
		return
	}
	p := s.newPage(c, "")
	p.Refusal = [2]string{problemOf(cabinetTexts["ru"], err).Text, problemOf(cabinetTexts["en"], err).Text}
	s.render(c, httperr.Status(fe.Kind), "refused", p)
}

// providerRow is a CRM an integration can be connected with: its type id
// (the address of its consent) and its name as people know it.
type providerRow struct {
	Type, Name string
}
