package b24sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoHandler is returned (wrapped) when an event has no handler bound on
// the portal, so nothing was posted. Bitrix24 silently drops such events;
// tests usually want to know.
var ErrNoHandler = errors.New("no handler bound for the event")

// EventBinding is one event.bind registration.
type EventBinding struct {
	ID       int // sent as event_handler_id
	Event    string
	Handler  string
	AuthType int // user id whose token the event carries; 0 = acting user
	Offline  bool
}

// EventDelivery is one event POST the simulator made.
type EventDelivery struct {
	Time      time.Time
	MemberID  string
	Event     string
	Handler   string
	HandlerID int
	// Body is the form-encoded body exactly as posted.
	Body   string
	Status int    // handler's HTTP status; 0 if the request failed
	Err    string // transport error, if any
}

// OK reports whether the handler acknowledged the delivery with 2xx.
func (d EventDelivery) OK() bool { return d.Err == "" && d.Status >= 200 && d.Status < 300 }

// Form decodes Body.
func (d EventDelivery) Form() url.Values {
	v, _ := url.ParseQuery(d.Body)
	return v
}

// formFields is an ordered form body. Bitrix24's queue posts keys in a
// stable order (event, event_handler_id, data, ts, auth) with brackets
// percent-encoded; url.Values would sort them.
type formFields []formField

type formField struct{ k, v string }

func (f *formFields) add(k, v string) { *f = append(*f, formField{k, v}) }

func (f formFields) encode() string {
	var b strings.Builder
	for i, kv := range f {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv.k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv.v))
	}
	return b.String()
}

func (f formFields) values() url.Values {
	v := make(url.Values, len(f))
	for _, kv := range f {
		v.Add(kv.k, kv.v)
	}
	return v
}

// authMode selects the auth block of an event.
type authMode int

const (
	authMinimal   authMode = iota // domain, member_id, application_token
	authUninstall                 // + server/client endpoint, no tokens
	authUser                      // a user access token, no refresh token
	authInstall                   // access + refresh token of the installer
)

// pendingEvent is an event produced under the lock, delivered after it.
type pendingEvent struct {
	memberID string
	event    string
	data     formFields
	mode     authMode
	userID   int // acting user for authUser
}

// eventBodyLocked renders the body for one binding.
func (s *Server) eventBodyLocked(p *Portal, b *EventBinding, ev pendingEvent, now time.Time) formFields {
	var f formFields
	f.add("event", strings.ToUpper(ev.event))
	f.add("event_handler_id", strconv.Itoa(b.ID))
	f = append(f, ev.data...)
	f.add("ts", strconv.FormatInt(now.Unix(), 10))
	userID := ev.userID
	if b.AuthType > 0 {
		userID = b.AuthType
	}
	f = append(f, s.authFieldsLocked(p, ev.mode, userID, now)...)
	return f
}

// authFieldsLocked builds auth[...] in the fixtures' key order.
func (s *Server) authFieldsLocked(p *Portal, mode authMode, userID int, now time.Time) formFields {
	var f formFields
	endpoint := s.clientEndpointLocked()
	switch mode {
	case authMinimal:
		f.add("auth[domain]", p.domain)
		f.add("auth[member_id]", p.memberID)
		f.add("auth[application_token]", p.appToken)
	case authUninstall:
		f.add("auth[domain]", p.domain)
		f.add("auth[server_endpoint]", endpoint)
		f.add("auth[client_endpoint]", endpoint)
		f.add("auth[member_id]", p.memberID)
		f.add("auth[application_token]", p.appToken)
	case authUser, authInstall:
		if userID == 0 {
			userID = p.adminID
		}
		var access, refresh string
		var exp time.Time
		if mode == authInstall {
			access, refresh, exp = s.issuePairLocked(p, userID, now)
		} else {
			access, exp = s.issueAccessLocked(p, userID, now)
		}
		f.add("auth[access_token]", access)
		f.add("auth[expires]", strconv.FormatInt(exp.Unix(), 10))
		f.add("auth[expires_in]", strconv.Itoa(int(s.opts.AccessTTL/time.Second)))
		f.add("auth[scope]", p.scope)
		f.add("auth[domain]", p.domain)
		f.add("auth[server_endpoint]", endpoint)
		f.add("auth[status]", p.status)
		f.add("auth[client_endpoint]", endpoint)
		f.add("auth[member_id]", p.memberID)
		f.add("auth[user_id]", strconv.Itoa(userID))
		if refresh != "" {
			f.add("auth[refresh_token]", refresh)
		}
		f.add("auth[application_token]", p.appToken)
	}
	return f
}

// bindingsLocked returns the online handlers bound for event.
func (p *Portal) bindingsLocked(event string) []*EventBinding {
	var out []*EventBinding
	for _, b := range p.events {
		if strings.EqualFold(b.Event, event) && !b.Offline && b.Handler != "" {
			out = append(out, b)
		}
	}
	return out
}

type preparedPost struct {
	memberID string
	event    string
	binding  EventBinding
	body     string
}

// prepareLocked renders ev for every bound handler.
func (s *Server) prepareLocked(ev pendingEvent, now time.Time) []preparedPost {
	p, ok := s.portals[ev.memberID]
	if !ok {
		return nil
	}
	var out []preparedPost
	for _, b := range p.bindingsLocked(ev.event) {
		out = append(out, preparedPost{
			memberID: p.memberID,
			event:    strings.ToUpper(ev.event),
			binding:  *b,
			body:     s.eventBodyLocked(p, b, ev, now).encode(),
		})
	}
	return out
}

// dispatch delivers events triggered by REST calls in the background, as
// Bitrix24's queue does; Wait waits for them.
func (s *Server) dispatch(events []pendingEvent) {
	if len(events) == 0 {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	now := s.clock()
	var posts []preparedPost
	for _, ev := range events {
		posts = append(posts, s.prepareLocked(ev, now)...)
	}
	if len(posts) > 0 {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if len(posts) == 0 {
		return
	}
	go func() {
		defer s.wg.Done()
		for _, pp := range posts {
			s.post(s.ctx, pp)
		}
	}()
}

// post performs one delivery, without retries (Bitrix24 does not retry
// online events), and records it.
func (s *Server) post(ctx context.Context, pp preparedPost) EventDelivery {
	d := EventDelivery{MemberID: pp.memberID, Event: pp.event, Handler: pp.binding.Handler, HandlerID: pp.binding.ID, Body: pp.body}
	status, err := s.postForm(ctx, pp.binding.Handler, pp.body)
	d.Status = status
	if err != nil {
		d.Err = err.Error()
		s.log.Warn("event delivery failed", "member_id", pp.memberID, "event", pp.event, "handler_id", pp.binding.ID, "err", err)
	} else {
		s.log.Info("event delivered", "member_id", pp.memberID, "event", pp.event, "handler_id", pp.binding.ID, "status", status)
	}
	s.mu.Lock()
	d.Time = s.clock()
	s.deliveries = appendCapped(s.deliveries, d, s.opts.MaxRecorded)
	s.mu.Unlock()
	return d
}

func (s *Server) postForm(ctx context.Context, target, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("b24sim: post event: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Bitrix24 Webhook Engine")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("b24sim: post event: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// deliverNow posts synchronously and folds failures into one error.
func (s *Server) deliverNow(ctx context.Context, posts []preparedPost, event string) error {
	if len(posts) == 0 {
		return fmt.Errorf("b24sim: %s: %w", event, ErrNoHandler)
	}
	var errs []error
	for _, pp := range posts {
		d := s.post(ctx, pp)
		switch {
		case d.Err != "":
			errs = append(errs, errors.New(d.Err))
		case !d.OK():
			errs = append(errs, fmt.Errorf("b24sim: %s handler %s answered HTTP %d", pp.event, pp.binding.Handler, d.Status))
		}
	}
	return errors.Join(errs...)
}

// PostEvent posts event to every handler bound for it on the portal, with
// form as data, and returns when all were attempted. form holds the data
// keys, e.g. {"data[CONNECTOR]": ..., "data[LINE]": ...} for
// ONIMCONNECTORSTATUSDELETE (lowercase keys there: data[connector],
// data[line]) or {"data": {"107"}} for ONIMCONNECTORLINEDELETE; they are
// sent sorted by key. event, event_handler_id and ts are added, and so is an
// auth block unless form has auth[...] keys: ONAPPUNINSTALL gets the
// uninstall shape (no tokens), ONAPPINSTALL the install shape (fresh token
// pair), everything else domain, member_id and application_token.
// Failures (transport errors, non-2xx) are returned joined; ErrNoHandler
// when nothing is bound.
func (s *Server) PostEvent(ctx context.Context, memberID, event string, form url.Values) error {
	var data formFields
	hasAuth := false
	for _, k := range sortedKeys(form) {
		if strings.HasPrefix(k, "auth[") {
			hasAuth = true
		}
		if k == "event" || k == "event_handler_id" || k == "ts" || strings.HasPrefix(k, "auth[") {
			continue
		}
		for _, v := range form[k] {
			data.add(k, v)
		}
	}
	mode := authMinimal
	switch strings.ToUpper(event) {
	case "ONAPPUNINSTALL":
		mode = authUninstall
	case "ONAPPINSTALL":
		mode = authInstall
	}
	s.mu.Lock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	now := s.clock()
	var posts []preparedPost
	for _, b := range p.bindingsLocked(event) {
		var f formFields
		f.add("event", strings.ToUpper(event))
		f.add("event_handler_id", strconv.Itoa(b.ID))
		f = append(f, data...)
		f.add("ts", strconv.FormatInt(now.Unix(), 10))
		if hasAuth {
			for _, k := range sortedKeys(form) {
				if strings.HasPrefix(k, "auth[") {
					for _, v := range form[k] {
						f.add(k, v)
					}
				}
			}
		} else {
			f = append(f, s.authFieldsLocked(p, mode, b.AuthType, now)...)
		}
		posts = append(posts, preparedPost{memberID: p.memberID, event: strings.ToUpper(event), binding: *b, body: f.encode()})
	}
	s.mu.Unlock()
	return s.deliverNow(ctx, posts, strings.ToUpper(event))
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// installFieldsLocked builds an ONAPPINSTALL body like install-event.txt.
func (s *Server) installFieldsLocked(p *Portal, lang string, now time.Time) formFields {
	if lang == "" {
		lang = p.lang
	}
	var f formFields
	f.add("event", "ONAPPINSTALL")
	f.add("event_handler_id", "0")
	f.add("data[VERSION]", "1")
	f.add("data[ACTIVE]", "Y")
	f.add("data[INSTALLED]", "Y")
	f.add("data[LANGUAGE_ID]", lang)
	f.add("ts", strconv.FormatInt(now.Unix(), 10))
	f = append(f, s.authFieldsLocked(p, authInstall, p.adminID, now)...)
	return f
}

// InstallEventForm returns an ONAPPINSTALL body like install-event.txt with
// a fresh token pair (as from InstallTokens) for the portal's admin. It
// panics for an unknown member id. url.Values loses the key order; use
// PostInstallEvent to post the exact wire format.
func (s *Server) InstallEventForm(memberID, lang string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	return s.installFieldsLocked(p, lang, s.clock()).values()
}

// PostInstallEvent posts ONAPPINSTALL to handlerURL (the app card's
// installation handler, which is not an event.bind binding) in Bitrix24's
// wire format and returns the handler's status.
func (s *Server) PostInstallEvent(ctx context.Context, memberID, handlerURL, lang string) (int, error) {
	s.mu.Lock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	body := s.installFieldsLocked(p, lang, s.clock()).encode()
	s.mu.Unlock()
	d := s.post(ctx, preparedPost{memberID: p.memberID, event: "ONAPPINSTALL", binding: EventBinding{Event: "ONAPPINSTALL", Handler: handlerURL}, body: body})
	if d.Err != "" {
		return 0, errors.New(d.Err)
	}
	return d.Status, nil
}

// OperatorReply simulates an operator answering in the Open Lines chat of
// externalChatID (the chat.id the connector used) on lineID: the message is
// added to the transcript and ONIMCONNECTORMESSAGEADD is posted, form-
// encoded exactly like imconnector-message-add-event.txt, to every handler
// bound for it. With the connector's NEED_SIGNATURE (default) the text is
// prefixed "[b]Operator Name:[/b][br]" as Bitrix24 does. Files with Content
// are served by the simulator at the generated link/downloadLink.
//
// It returns the Bitrix24 message id (im.message_id) whenever the message
// was recorded, together with any delivery error (ErrNoHandler if nothing
// is bound). There are no retries.
func (s *Server) OperatorReply(ctx context.Context, memberID, lineID, externalChatID, text string, files ...File) (imMessageID string, err error) {
	return s.SendOperatorMessage(ctx, memberID, OperatorMessage{Line: lineID, ChatID: externalChatID, Text: text, Files: files})
}

// OperatorMessage is an operator reply with every knob.
type OperatorMessage struct {
	Line   string // Open Line id
	ChatID string // external chat id
	Text   string
	Files  []File
	// UserID is the writing operator; 0 means the portal's operator. Use a
	// negative value for a system message (user_id 0 in the event, e.g.
	// greetings or session-closing texts).
	UserID int
	// NoSignature suppresses the operator-name prefix even when the
	// connector asked for signatures.
	NoSignature bool
}

// SendOperatorMessage is OperatorReply with full control.
func (s *Server) SendOperatorMessage(ctx context.Context, memberID string, m OperatorMessage) (string, error) {
	lineID, err := strconv.Atoi(strings.TrimSpace(m.Line))
	if err != nil {
		return "", fmt.Errorf("b24sim: operator reply: line %q is not a number", m.Line)
	}
	s.mu.Lock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	line := p.lineLocked(lineID)
	if line == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("b24sim: operator reply: portal %s has no line %d", p.memberID, lineID)
	}
	dlg := line.dialogByChatLocked(m.ChatID)
	if dlg == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("b24sim: operator reply: no dialog with chat %q on line %d (the connector must send a message first)", m.ChatID, lineID)
	}
	now := s.clock()
	userID := m.UserID
	switch {
	case userID == 0:
		userID = p.operatorID
	case userID < 0:
		userID = 0
	}
	text := m.Text
	if reg := p.connectorLocked(dlg.Connector); userID > 0 && !m.NoSignature && (reg == nil || reg.needSignature) {
		if u, ok := p.user(userID); ok && u.FullName() != "" {
			text = "[b]" + u.FullName() + ":[/b][br]" + text
		}
	}
	p.seq.imMessage++
	msgID := strconv.Itoa(p.seq.imMessage)
	files := make([]File, 0, len(m.Files))
	for _, f := range m.Files {
		files = append(files, p.publishFileLocked(f, s.clientEndpointLocked(), now))
	}
	line.messages = append(line.messages, Message{
		Direction:       Outbound,
		Connector:       dlg.Connector,
		Line:            lineID,
		IMChatID:        dlg.IMChatID,
		IMMessageID:     msgID,
		SessionID:       dlg.SessionID,
		ConnectorUserID: dlg.ConnectorUserID,
		ChatID:          dlg.ChatID,
		ChatName:        dlg.ChatName,
		Text:            text,
		Files:           files,
		OperatorID:      userID,
		Time:            now,
	})

	var data formFields
	data.add("data[CONNECTOR]", dlg.Connector)
	data.add("data[LINE]", strconv.Itoa(lineID))
	pre := "data[MESSAGES][0]"
	data.add(pre+"[im][chat_id]", dlg.IMChatID)
	data.add(pre+"[im][message_id]", msgID)
	data.add(pre+"[message][user_id]", strconv.Itoa(userID))
	data.add(pre+"[message][text]", text)
	for i, f := range files {
		fp := fmt.Sprintf("%s[message][files][%d]", pre, i)
		data.add(fp+"[name]", f.Name)
		data.add(fp+"[type]", f.Type)
		data.add(fp+"[mime]", f.Mime)
		data.add(fp+"[size]", strconv.FormatInt(f.Size, 10))
		data.add(fp+"[link]", f.Link)
		data.add(fp+"[downloadLink]", f.DownloadLink)
	}
	data.add(pre+"[chat][id]", dlg.ChatID)
	// A system message has no author; its event carries the admin's token.
	authUserID := userID
	if authUserID == 0 {
		authUserID = p.adminID
	}
	ev := pendingEvent{memberID: p.memberID, event: "ONIMCONNECTORMESSAGEADD", data: data, mode: authUser, userID: authUserID}
	posts := s.prepareLocked(ev, now)
	s.mu.Unlock()
	return msgID, s.deliverNow(ctx, posts, "ONIMCONNECTORMESSAGEADD")
}

// storedFile is an operator attachment the simulator serves.
type storedFile struct {
	name    string
	mime    string
	content []byte
}

// publishFileLocked fills in the portal-side fields of an operator file and
// stores its content for download.
func (p *Portal) publishFileLocked(f File, endpoint string, now time.Time) File {
	if f.Type == "" {
		f.Type = fileType(f.Mime, f.Name)
	}
	if f.Content != nil {
		if f.Size == 0 {
			f.Size = int64(len(f.Content))
		}
		p.seq.file++
		id := strconv.Itoa(p.seq.file)
		token := "disk|" + id + "|" + randomHex(8)
		p.files[token] = &storedFile{name: f.Name, mime: f.Mime, content: slices.Clone(f.Content)}
		base := strings.TrimSuffix(endpoint, "rest/")
		if f.Link == "" {
			f.Link = fmt.Sprintf("%sdisk/showFile/%s/?&ncc=1&ts=%d&filename=%s", base, id, now.Unix(), url.QueryEscape(f.Name))
		}
		if f.DownloadLink == "" {
			f.DownloadLink = endpoint + "download.json?" + url.Values{"token": {token}}.Encode()
		}
		p.files["show:"+id] = p.files[token]
	}
	f.Content = nil
	return f
}

func fileType(mimeType, name string) string {
	switch {
	case strings.HasPrefix(mimeType, "image/"):
		return "image"
	case strings.HasPrefix(mimeType, "audio/"):
		return "audio"
	case strings.HasPrefix(mimeType, "video/"):
		return "video"
	}
	switch strings.ToLower(name[strings.LastIndexByte(name, '.')+1:]) {
	case "jpg", "jpeg", "png", "gif", "webp", "bmp":
		return "image"
	}
	return "file"
}

// handleFile serves operator attachments at the links put into events.
// Bitrix24 checks the auth of download links; the simulator does not, so
// that links stay usable however the test moves the clock.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	var key string
	if strings.HasPrefix(r.URL.Path, "/disk/showFile/") {
		key = "show:" + strings.Trim(strings.TrimPrefix(r.URL.Path, "/disk/showFile/"), "/")
	} else {
		key = r.URL.Query().Get("token")
	}
	s.mu.Lock()
	var f *storedFile
	for _, p := range s.portals {
		if sf, ok := p.files[key]; ok {
			f = sf
			break
		}
	}
	s.mu.Unlock()
	if f == nil {
		writeAPIError(w, newAPIError(http.StatusNotFound, "ERROR_NOT_FOUND", "File not found"))
		return
	}
	ct := f.mime
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", "attachment; filename=\""+strings.ReplaceAll(f.name, "\"", "")+"\"")
	w.Write(f.content)
}
