package web

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
	assets "github.com/switchboard/switchboard/web"
)

// The shared chat (issue 9): the workspace's dialogs as Wazzup's chat
// window shows them, and one dialog in the chat view the CRM card pages
// embed (internal/crm/chatview) — the cabinet is its third place.
//
// Who sees what: owners and admins see every dialog (the CRMs' admins do
// too). A manager sees, in each integration, what the CRM user they are
// linked to sees there: its access matrix and visibility rule, through the
// same routing.Gate the card pages use. A manager linked to no CRM user of
// an integration sees none of its dialogs: the rights are kept per CRM
// user, so without a link there is nobody whose rights could apply, and
// the page says so instead of showing an empty list without a reason.
//
// A channel bound to no CRM keeps no dialogs (a dialog is a customer as one
// integration sees them); its customers' conversations come from the
// store as dialogs without an integration (store.UnboundConversations,
// their id the customer's contact id). No CRM user's rights apply to them,
// so every cabinet user of the workspace sees and answers them: a team
// working without a CRM, or before binding one, answers its customers
// here. Nobody owns them, and they have no read marks of their own: their
// unread count is what came since the last answer.

// chatListMax bounds the dialogs the list shows: the most recent ones.
const chatListMax = 300

// chatFilters are the list's filters, in the order the page shows them.
var chatFilters = []string{"all", "mine", "unassigned"}

// chatEmoji are the send box's emoji: the common ones, no picker library.
var chatEmoji = []string{"😀", "😂", "😊", "😉", "😍", "🤔", "😢", "🙏", "👍", "👎", "👌", "👋", "🎉", "❤️", "🔥", "✅", "❌", "⏰", "📦", "🚚"}

// chatPage is what the shared chat's templates add to page.
type chatPage struct {
	Filter  string
	Filters []string
	Rows    []chatRow
	// NoLinks explains an empty list: a manager linked to no CRM user.
	NoLinks bool
	// MineUnlinked explains an empty "mine": the user (an owner or admin,
	// who sees everything) is linked to no CRM user, so owns no dialog.
	MineUnlinked bool
	// Dialog is the open dialog (nil: none chosen).
	Dialog *chatDialog
}

// chatRow is one dialog of the list.
type chatRow struct {
	ID, ContactID, Name, Channel, Last, Waiting, Owner string
	Unread                                             int
	On                                                 bool
}

// chatDialog is the open dialog: the shared chat view plus the cabinet's
// own controls.
type chatDialog struct {
	ID, ContactID, Name, Channel string
	Waiting                      string
	CanNoReply                   bool
	View                         *chatview.Page
}

// chatAccess is what the signed-in user may see in each integration of
// the workspace; the integration "" stands for the channels bound to none.
type chatAccess struct {
	admin bool
	// links are the user's CRM users by integration id.
	links map[string]string
	ins   map[string]*store.Integration
	gates map[string]routing.Gate
	// sessions are who the user is in each integration they have a gate in.
	sessions map[string]*crm.Session
}

// sees is whether the user sees the dialog.
func (a *chatAccess) sees(d *store.Dialog) bool {
	g, ok := a.gates[d.IntegrationID]
	return ok && g.Sees(d.ChannelID, d.OwnerUserID)
}

// sends is whether the user may write in the dialog.
func (a *chatAccess) sends(d *store.Dialog) bool {
	g, ok := a.gates[d.IntegrationID]
	return ok && g.Sends(d.ChannelID, d.OwnerUserID)
}

// mountCabinetChat adds the shared chat. in is signed in and
// CSRF-checked; the send route reads its (capped) body before checking
// the token itself, so it is mounted signed in only.
func (s *Server) mountCabinetChat(in *gin.RouterGroup) {
	in.GET("/chat", s.chatPage)
	in.GET("/chat/list", s.chatList)
	in.GET("/chat/events", s.chatEvents)
	in.GET("/chat/dialogs/:dialog_id/log", s.chatLog)
	in.POST("/chat/dialogs/:dialog_id/no-reply-needed", s.chatNoReply)
	s.engine.POST("/chat/dialogs/:dialog_id/send", s.signedIn, s.chatSend)
	s.engine.GET("/assets/chat.js", s.chatScript)
	s.engine.GET("/assets/cabinet_chat.js", serveStatic("static/cabinet_chat.js"))
}

// chatAccessOf works out the user's gates, one per integration.
func (s *Server) chatAccessOf(ctx context.Context, cc *cabinetCtx) (*chatAccess, error) {
	a := &chatAccess{admin: cc.User.Role == store.RoleOwner || cc.User.Role == store.RoleAdmin,
		ins: map[string]*store.Integration{}, gates: map[string]routing.Gate{}, sessions: map[string]*crm.Session{}}
	links, err := s.d.Store.CabinetUserCRMLinks(ctx, []string{cc.User.ID})
	if err != nil {
		return nil, err
	}
	a.links = links[cc.User.ID]
	// The conversations of channels bound to no CRM: open to everyone
	// (the gate of no integration passes everything).
	unbound := &crm.Session{Admin: a.admin}
	g, err := s.d.Chat.Gate(ctx, nil, unbound)
	if err != nil {
		return nil, err
	}
	a.gates[""], a.sessions[""] = g, unbound
	ins, err := s.d.Store.ListIntegrations(ctx, store.Scope{WorkspaceID: cc.Workspace.ID})
	if err != nil {
		return nil, err
	}
	for i := range ins {
		in := &ins[i]
		a.ins[in.ID] = in
		crmUser, linked := a.links[in.ID]
		if !a.admin && !linked {
			continue
		}
		ss := &crm.Session{UserID: crmUser, Admin: a.admin}
		g, err := s.d.Chat.Gate(ctx, in, ss)
		if err != nil {
			// Settings that do not decode close the integration's
			// dialogs rather than open them.
			s.d.Log.Error("shared chat: access of an integration", "integration_id", in.ID, "err", err)
			continue
		}
		a.gates[in.ID], a.sessions[in.ID] = g, ss
	}
	return a, nil
}

// noLinks is whether the user is a manager the dialogs of every CRM are
// closed to: linked to no CRM user of the workspace's integrations.
func (a *chatAccess) noLinks() bool {
	return !a.admin && len(a.ins) > 0 && len(a.gates) == 1 // the unbound channels' gate alone
}

// chatFilter is the list's filter from the query; an unknown one is all.
func chatFilter(c *gin.Context) string {
	f := c.Query("f")
	for _, k := range chatFilters {
		if f == k {
			return f
		}
	}
	return "all"
}

// contactName is how the list names a customer.
func contactName(ct *store.Contact) string {
	if ct == nil {
		return "?"
	}
	return cmp.Or(ct.Name, ct.Phone, ct.Username, ct.ExternalID)
}

// waitingFor words how long a customer has waited, in lang.
func waitingFor(t map[string]string, since *time.Time) string {
	if since == nil {
		return ""
	}
	d := time.Since(*since)
	switch {
	case d < time.Minute:
		return t["chat_wait_now"]
	case d < time.Hour:
		return t["chat_wait"] + " " + strconv.Itoa(int(d/time.Minute)) + " " + t["chat_min"]
	case d < 48*time.Hour:
		return t["chat_wait"] + " " + strconv.Itoa(int(d/time.Hour)) + " " + t["chat_h"]
	}
	return t["chat_wait"] + " " + strconv.Itoa(int(d/(24*time.Hour))) + " " + t["chat_d"]
}

// chatRows lists the dialogs the user sees under filter f, the most
// recent first, with their unread counts; selected marks the open one.
func (s *Server) chatRows(ctx context.Context, cc *cabinetCtx, a *chatAccess, p *page, f, selected string) ([]chatRow, error) {
	ds, _, err := s.d.Store.ListDialogs(ctx, store.Scope{WorkspaceID: cc.Workspace.ID}, store.DialogFilter{}, nil, chatListMax)
	if err != nil {
		return nil, err
	}
	free, err := s.d.Store.UnboundConversations(ctx, cc.Workspace.ID, chatListMax)
	if err != nil {
		return nil, err
	}
	ds = mergeRecent(free, ds, chatListMax)
	chs, err := s.d.Store.ListChannels(ctx, store.Scope{WorkspaceID: cc.Workspace.ID})
	if err != nil {
		return nil, err
	}
	chName := map[string]string{}
	for _, ch := range chs {
		chName[ch.ID] = ch.Name
	}
	var shown []store.DialogView
	for _, d := range ds {
		if !a.sees(&d.Dialog) {
			continue
		}
		switch f {
		case "mine":
			if d.OwnerUserID == "" || d.OwnerUserID != a.links[d.IntegrationID] {
				continue
			}
		case "unassigned":
			if d.OwnerUserID != "" {
				continue
			}
		}
		shown = append(shown, d)
	}
	unread, err := s.d.Store.ChatUnread(ctx, cc.User.ID, shown)
	if err != nil {
		return nil, err
	}
	// One row per channel and customer: a channel bound to two CRMs keeps
	// a dialog in each, but the conversation is the same messages. The
	// most recent dialog names the row (any of them opens it).
	rows := make([]chatRow, 0, len(shown))
	at := map[[2]string]int{}
	since := map[int]*time.Time{}
	for _, d := range shown {
		key := [2]string{d.ChannelID, d.ID}
		if d.Contact != nil {
			key[1] = "c:" + d.Contact.ID
		}
		i, seen := at[key]
		if !seen {
			i = len(rows)
			at[key] = i
			r := chatRow{ID: d.ID, Name: contactName(d.Contact), Channel: chName[d.ChannelID], Last: when(d.LastMessageAt, p.TZ, p.Lang)}
			if d.Contact != nil {
				r.ContactID = d.Contact.ID
			}
			rows = append(rows, r)
		}
		r := &rows[i]
		// The merged dialogs count the same messages (a dialog made when
		// the second CRM was bound counts only those since): the row's
		// unread is the largest, not the sum.
		r.Unread = max(r.Unread, unread[d.ID])
		r.On = r.On || d.ID == selected
		r.Owner = cmp.Or(r.Owner, d.OwnerUserID)
		if d.Waiting {
			since[i] = earliest(since[i], d.WaitingSince)
			r.Waiting = waitingFor(p.T, since[i])
		}
	}
	return rows, nil
}

// mergeRecent merges two lists of dialogs, each the most recent first,
// into one of at most limit. On a tie a comes first: a channel unbound
// since keeps its old dialogs, and the conversation read from its
// messages (in a) is the one to open, the same customer's row.
func mergeRecent(a, b []store.DialogView, limit int) []store.DialogView {
	out := make([]store.DialogView, 0, min(len(a)+len(b), limit))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && !a[0].LastMessageAt.Before(b[0].LastMessageAt)) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// earliest is the earlier of two waiting times; a wait whose start is
// unknown counts from now.
func earliest(a, b *time.Time) *time.Time {
	if b == nil {
		b = new(time.Time)
		*b = time.Now()
	}
	if a == nil || b.Before(*a) {
		return b
	}
	return a
}

// chatPage shows the list and, with ?d=, one dialog.
func (s *Server) chatPage(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	p := s.newPage(c, "chat")
	a, err := s.chatAccessOf(ctx, cc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	cp := &chatPage{Filter: chatFilter(c), Filters: chatFilters, NoLinks: a.noLinks()}
	cp.MineUnlinked = cp.Filter == "mine" && len(a.links) == 0
	p.Chat = cp
	if id := c.Query("d"); id != "" {
		dv, ok := s.chatDialogOf(c, a, id)
		if !ok {
			return
		}
		d, err := s.chatDialogView(ctx, cc, a, p, dv)
		if err != nil {
			s.pageErr(c, err)
			return
		}
		d.View.Notice, d.View.NoticeErr = chatview.Notice(p.Lang, c.Request.URL.Query())
		cp.Dialog = d
		if err := s.markRead(ctx, cc.User.ID, dv); err != nil {
			s.pageErr(c, err)
			return
		}
	}
	sel := ""
	if cp.Dialog != nil {
		sel = cp.Dialog.ID
	}
	if cp.Rows, err = s.chatRows(ctx, cc, a, p, cp.Filter, sel); err != nil {
		s.pageErr(c, err)
		return
	}
	s.render(c, http.StatusOK, "chat", p)
}

// chatDialogOf loads a dialog of the workspace the user sees; otherwise
// it answers 404 (a dialog one may not see is not confirmed to exist).
func (s *Server) chatDialogOf(c *gin.Context, a *chatAccess, id string) (*chatMerged, bool) {
	if !store.ValidID(id) {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return nil, false
	}
	ws := cabinetOf(c).Workspace.ID
	d, err := s.d.Store.GetDialog(c.Request.Context(), store.Scope{WorkspaceID: ws}, id)
	if errors.Is(err, store.ErrNotFound) {
		// A customer of a channel bound to no CRM: a conversation
		// without a dialog, by its contact id (ids are unique across
		// tables). Only that one: it has no dialogs to merge.
		d, err = s.d.Store.UnboundConversation(c.Request.Context(), ws, id)
		if err == nil && d.Contact != nil && a.sees(&d.Dialog) {
			return &chatMerged{DialogView: d, all: []store.DialogView{*d}, since: d.WaitingSince}, true
		}
	}
	if err != nil {
		s.pageErr(c, err)
		return nil, false
	}
	if d.Contact == nil || d.IntegrationID == "" {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return nil, false
	}
	// The dialogs of the same channel and customer in other integrations
	// are the same conversation (one row of the list): the user opens it
	// if they see any of them, and writes with the one they may write in.
	all, _, err := s.d.Store.ListDialogs(c.Request.Context(), store.Scope{WorkspaceID: cabinetOf(c).Workspace.ID}, store.DialogFilter{ChannelID: d.ChannelID}, nil, chatListMax)
	if err != nil {
		s.pageErr(c, err)
		return nil, false
	}
	m := &chatMerged{}
	for i := range all {
		o := &all[i]
		if o.Contact == nil || o.Contact.ID != d.Contact.ID || !a.sees(&o.Dialog) {
			continue
		}
		m.all = append(m.all, *o)
		if o.Waiting {
			m.since = earliest(m.since, o.WaitingSince)
		}
	}
	if len(m.all) == 0 {
		s.refusePage(c, http.StatusNotFound, "not_found")
		return nil, false
	}
	m.DialogView = &m.all[0]
	for i := range m.all {
		if a.sends(&m.all[i].Dialog) {
			m.DialogView = &m.all[i]
			break
		}
	}
	return m, true
}

// chatMerged is an open conversation: the dialog the user writes with
// and every dialog of the same channel and customer they see.
type chatMerged struct {
	*store.DialogView
	all []store.DialogView
	// since is when the earliest waiting dialog began to wait (nil: none
	// waits).
	since *time.Time
}

// noReply are the merged dialogs that wait and the user may write in:
// those "no reply needed" stops. A conversation of a channel bound to no
// CRM has no dialog row to keep the decision: only an answer ends its wait.
func (m *chatMerged) noReply(a *chatAccess) []string {
	var ids []string
	for i := range m.all {
		if m.all[i].Waiting && m.all[i].IntegrationID != "" && a.sends(&m.all[i].Dialog) {
			ids = append(ids, m.all[i].ID)
		}
	}
	return ids
}

// waiting is whether any of the merged dialogs waits for an answer.
func (m *chatMerged) waiting() bool {
	for _, d := range m.all {
		if d.Waiting {
			return true
		}
	}
	return false
}

// markRead marks every merged dialog read for the user, and the
// customer's newest message read at the messenger.
func (s *Server) markRead(ctx context.Context, userID string, m *chatMerged) error {
	for _, d := range m.all {
		if d.IntegrationID == "" {
			continue // no dialog row to mark (its unread ends with an answer)
		}
		if err := s.d.Store.MarkDialogRead(ctx, userID, d.ID); err != nil {
			return err
		}
	}
	// The messenger is told the business read the customer's messages
	// (the ticks turn blue on their phone); the merged dialogs share the
	// channel and the customer.
	return s.d.Messaging.MarkReadSeen(ctx, m.WorkspaceID, m.ChannelID, m.ContactID)
}

// chatRecord is the dialog as the chat view takes a record: its customer,
// and their number so that every WhatsApp channel may write to it (the
// channel switch). A conversation of a channel bound to no CRM keeps to
// its own channel: its gate passes everything, so the number would open
// the CRM-bound channels past their access rights.
func chatRecord(a *chatAccess, d *store.DialogView, lang string) chatview.Record {
	rec := chatview.Record{Integration: a.ins[d.IntegrationID], WorkspaceID: d.WorkspaceID, Session: a.sessions[d.IntegrationID], Lang: lang,
		Contacts: []store.Contact{*d.Contact}}
	if d.Contact.Phone != "" && d.IntegrationID != "" {
		rec.Phones = []string{d.Contact.Phone}
	}
	return rec
}

// chatDialogView builds the open dialog's pane.
func (s *Server) chatDialogView(ctx context.Context, cc *cabinetCtx, a *chatAccess, p *page, m *chatMerged) (*chatDialog, error) {
	d := m.DialogView
	v, err := s.d.Chat.Build(ctx, chatRecord(a, d, p.Lang))
	if err != nil {
		return nil, err
	}
	v.Action, v.CSRF = "/chat/dialogs/"+d.ID+"/send", cc.csrf
	v.Emoji = chatEmoji
	out := &chatDialog{ID: d.ID, ContactID: d.Contact.ID, Name: contactName(d.Contact), View: v,
		CanNoReply: len(m.noReply(a)) > 0}
	if ch, err := s.d.Store.GetChannel(ctx, store.Scope{WorkspaceID: cc.Workspace.ID}, d.ChannelID); err == nil {
		out.Channel = ch.Name
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if m.waiting() {
		out.Waiting = waitingFor(p.T, m.since)
	}
	return out, nil
}

// chatList is the list alone, for the page's live updates.
func (s *Server) chatList(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	p := s.newPage(c, "chat")
	a, err := s.chatAccessOf(ctx, cc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	cp := &chatPage{Filter: chatFilter(c), NoLinks: a.noLinks()}
	cp.MineUnlinked = cp.Filter == "mine" && len(a.links) == 0
	p.Chat = cp
	if cp.Rows, err = s.chatRows(ctx, cc, a, p, cp.Filter, c.Query("d")); err != nil {
		s.pageErr(c, err)
		return
	}
	s.render(c, http.StatusOK, "chat_list", p)
}

// chatLog is the open dialog's messages alone, for the live updates; the
// user has seen them, so they are read.
func (s *Server) chatLog(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	p := s.newPage(c, "chat")
	a, err := s.chatAccessOf(ctx, cc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	dv, ok := s.chatDialogOf(c, a, c.Param("dialog_id"))
	if !ok {
		return
	}
	d, err := s.chatDialogView(ctx, cc, a, p, dv)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	if err := s.markRead(ctx, cc.User.ID, dv); err != nil {
		s.pageErr(c, err)
		return
	}
	p.Chat = &chatPage{Dialog: d}
	s.render(c, http.StatusOK, "chat_log", p)
}

// chatBack is the dialog's page with the filter kept and q's outcome.
func chatBack(id, filter string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	q.Set("d", id)
	if filter != "" && filter != "all" {
		q.Set("f", filter)
	}
	return "/chat?" + q.Encode()
}

// chatSend handles the send box. The body is read, capped at the upload
// limit, before the CSRF token in it is checked. A page with script sends
// with fetch (X-Requested-With: fetch) and gets the outcome as JSON, so
// the page stays; without script the browser is sent back to the dialog.
func (s *Server) chatSend(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	if err := s.d.Chat.ReadForm(c.Writer, c.Request); err != nil {
		s.chatErr(c, err)
		return
	}
	if !s.csrfOK(c) {
		return
	}
	a, err := s.chatAccessOf(ctx, cc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	dv, ok := s.chatDialogOf(c, a, c.Param("dialog_id"))
	if !ok {
		return
	}
	lang := lang(c)
	sc := store.Scope{WorkspaceID: cc.Workspace.ID}
	q, err := s.d.Chat.Send(ctx, chatRecord(a, dv.DialogView, lang), c.Request, func(ctx context.Context, channelID string, req messaging.SendRequest) (*store.Message, error) {
		// The cabinet user wrote it, whatever CRM user the page's record
		// would name.
		// A colleague added without a name (as the README adds the
		// first) is named by email, not by an id nobody knows.
		req.Author = &store.MessageAuthor{Kind: store.AuthorCabinet, UserID: cc.User.ID, Name: cmp.Or(cc.User.Name, cc.User.Email)}
		return s.d.Messaging.Send(ctx, sc, channelID, req)
	})
	if err != nil {
		s.chatErr(c, err)
		return
	}
	if c.GetHeader("X-Requested-With") == "fetch" {
		text, isErr := chatview.Notice(lang, q)
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, gin.H{"ok": !isErr, "notice": text})
		return
	}
	c.Redirect(http.StatusSeeOther, chatBack(dv.ID, c.PostForm("f"), q))
}

// chatErr answers a send the chat view refused outright (no access, a
// body too large or broken): the status says which, and the words are the
// chat view's, as JSON to the page's script or as a page.
func (s *Server) chatErr(c *gin.Context, err error) {
	fe := fault.As(err)
	if fe == nil {
		s.pageErr(c, err)
		return
	}
	status := http.StatusBadRequest
	switch fe.Kind {
	case fault.Forbidden:
		status = http.StatusForbidden
	case fault.TooLarge:
		status = http.StatusRequestEntityTooLarge
	case fault.NotFound:
		status = http.StatusNotFound
	}
	l := lang(c)
	text, ok := chatview.ErrText(l, fe.Code)
	if !ok {
		text = chatview.Texts(l)["err_internal"]
		if own, found := cabinetTexts[l]["e_"+fe.Code]; found {
			text, ok = own, true
		}
	}
	if c.GetHeader("X-Requested-With") == "fetch" {
		c.Header("Cache-Control", "no-store")
		c.AbortWithStatusJSON(status, gin.H{"ok": false, "notice": text})
		return
	}
	p := s.newPage(c, "chat")
	p.Refusal = [2]string{text, text}
	ol := map[string]string{"ru": "en", "en": "ru"}[l]
	other, ok := chatview.ErrText(ol, fe.Code)
	if !ok {
		other, ok = cabinetTexts[ol]["e_"+fe.Code]
	}
	if ok {
		p.Refusal = [2]string{text, other}
		if l == "en" {
			p.Refusal = [2]string{other, text}
		}
	}
	s.render(c, status, "refused", p)
}

// chatNoReply marks the dialog as needing no answer: it stops waiting.
// Only someone who may write in it may decide that.
func (s *Server) chatNoReply(c *gin.Context) {
	ctx := c.Request.Context()
	cc := cabinetOf(c)
	a, err := s.chatAccessOf(ctx, cc)
	if err != nil {
		s.pageErr(c, err)
		return
	}
	dv, ok := s.chatDialogOf(c, a, c.Param("dialog_id"))
	if !ok {
		return
	}
	ids := dv.noReply(a)
	if len(ids) == 0 && !a.sends(&dv.Dialog) {
		s.refusePage(c, http.StatusForbidden, "read_only")
		return
	}
	for _, id := range ids {
		if _, err := s.d.Store.DialogNoReplyNeeded(ctx, store.Scope{WorkspaceID: cc.Workspace.ID}, id); err != nil {
			s.pageErr(c, err)
			return
		}
	}
	c.Redirect(http.StatusSeeOther, chatBack(dv.ID, c.PostForm("f"), nil))
}

// chatScript serves the chat view's send-box script (the text the CRM
// pages inline) as a file, for the cabinet's CSP.
func (s *Server) chatScript(c *gin.Context) {
	var buf bytes.Buffer
	if err := cabinetPages.ExecuteTemplate(&buf, "chat_js", nil); err != nil {
		s.d.Log.Error("chat script failed to render", "err", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "text/javascript; charset=utf-8", buf.Bytes())
}

// serveStatic serves one of the pages' script files.
func serveStatic(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		js, err := assets.Static.ReadFile(name)
		if err != nil {
			c.AbortWithStatus(http.StatusNotFound)
			return
		}
		c.Header("Cache-Control", "public, max-age=300")
		c.Header("X-Content-Type-Options", "nosniff")
		c.Data(http.StatusOK, "text/javascript; charset=utf-8", js)
	}
}
