package amosim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"
)

// AmojoDateFormat is the Date header format amojo signs (RFC 2822 with a
// numeric zone).
const AmojoDateFormat = "Mon, 02 Jan 2006 15:04:05 -0700"

// Chat is one conversation of the channel in an account.
type Chat struct {
	ConversationID string // the integration's id
	AmoChatID      string // amojo's id
	ClientID       string // the integration's id of the customer (sender.id)
	ClientAmoID    string // amojo's id of the customer
	Name           string
	Phone          string
	Avatar         string
	ProfileLink    string
	Messages       []ChatMessage
	// ContactID is the account's contact the chat belongs to: the one an
	// integration linked it to (POST /api/v4/contacts/chats), or the one
	// amoCRM made with its incoming (unsorted) lead at the first message
	// of a chat linked to nobody; 0 before either.
	ContactID int
	// LinkID is the chat-to-contact link's id (0 when not linked by the
	// API); it changes when the chat is linked to another contact.
	LinkID int
	// LeadID is the incoming lead amoCRM made for the chat, 0 for none.
	LeadID int
}

// ChatMessage is one message of a Chat.
type ChatMessage struct {
	AmoID    string // amojo's message id
	RefID    string // the integration's msgid (incoming) or "" (manager's)
	Incoming bool   // from the customer (through the integration)
	Type     string
	Text     string
	Media    string
	FileName string
	FileSize int
	// SenderAmoID is the manager's amojo id for outgoing messages.
	SenderAmoID string
	Time        int64
	// Delivery is the last delivery status the integration reported for
	// a manager's message: 0 none, 1 delivered, 2 read, -1 error.
	Delivery  int
	ErrorCode int
	Error     string
}

type chatState struct {
	connected bool
	scopeID   string
	title     string
	chats     map[string]*Chat // by conversation id
	order     []string
}

// HookDelivery is one outgoing-message hook amojo posted.
type HookDelivery struct {
	URL       string
	Body      []byte
	Signature string
	Status    int // 0 when the request failed
	Err       string
}

// AmojoContentMD5 is lowercase hex MD5 of the body, amojo's Content-MD5.
func AmojoContentMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// AmojoSignature signs a request to amojo: lowercase hex HMAC-SHA1 keyed
// with the channel secret of METHOD, Content-MD5, Content-Type, Date and
// path joined by newlines (contract §6.2).
func AmojoSignature(secret, method, contentMD5, contentType, date, path string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(strings.Join([]string{strings.ToUpper(method), contentMD5, contentType, date, path}, "\n")))
	return hex.EncodeToString(m.Sum(nil))
}

// AmojoHookSignature signs an outgoing hook: hex HMAC-SHA1 of the raw body.
func AmojoHookSignature(secret string, body []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) amojoRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /v2/origin/custom/{id}/connect", s.amojo(s.handleConnect))
	m.HandleFunc("DELETE /v2/origin/custom/{id}/disconnect", s.amojo(s.handleDisconnect))
	m.HandleFunc("POST /v2/origin/custom/{id}/disconnect", s.amojo(s.handleDisconnect))
	m.HandleFunc("POST /v2/origin/custom/{id}", s.amojo(s.handleNewMessage))
	m.HandleFunc("POST /v2/origin/custom/{id}/chats", s.amojo(s.handleCreateChat))
	m.HandleFunc("POST /v2/origin/custom/{id}/{msgid}/delivery_status", s.amojo(s.handleDeliveryStatus))
	m.HandleFunc("GET /v2/origin/custom/{id}/chats/{conv}/history", s.amojo(s.handleHistory))
}

func amojoError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(mustJSON(map[string]any{"error_code": status, "error_description": msg}))
}

// amojo checks the request signature (403 on any mismatch) before the
// handler runs, holding s.mu.
func (s *Server) amojo(h func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			amojoError(w, http.StatusBadRequest, "unreadable body")
			return
		}
		if s.opts.ChannelSecret == "" {
			amojoError(w, http.StatusNotFound, "no channel registered")
			return
		}
		if why := s.checkAmojoSignature(r, body); why != "" {
			amojoError(w, http.StatusForbidden, why)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.amojoCalls == nil {
			s.amojoCalls = map[string]int{}
		}
		s.amojoCalls[r.Pattern]++
		if len(s.amojoFail) > 0 {
			st := s.amojoFail[0]
			s.amojoFail = s.amojoFail[1:]
			amojoError(w, st, http.StatusText(st))
			return
		}
		if s.failAfter[r.Pattern] > 0 {
			// Done, then the answer lost (FailAfterApply).
			s.failAfter[r.Pattern]--
			h(httptest.NewRecorder(), r, body)
			amojoError(w, http.StatusBadGateway, "upstream timed out")
			return
		}
		h(w, r, body)
	}
}

// AmojoCalls is how many signed amojo requests of route (a pattern such
// as "POST /v2/origin/custom/{id}") the simulator took.
func (s *Server) AmojoCalls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.amojoCalls[route]
}

// FailAmojo makes the next amojo requests (after their signature check)
// answer these statuses in turn, doing nothing: a 429 or 5xx storm.
func (s *Server) FailAmojo(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.amojoFail = append(s.amojoFail, statuses...)
}

func (s *Server) checkAmojoSignature(r *http.Request, body []byte) string {
	date := r.Header.Get("Date")
	t, err := time.Parse(AmojoDateFormat, date)
	if err != nil {
		return "invalid Date header"
	}
	if d := s.clock().Sub(t); d > s.opts.SignatureWindow || d < -s.opts.SignatureWindow {
		return "request expired"
	}
	md := r.Header.Get("Content-MD5")
	if md != AmojoContentMD5(body) {
		return "Content-MD5 mismatch"
	}
	want := AmojoSignature(s.opts.ChannelSecret, r.Method, md, r.Header.Get("Content-Type"), date, r.URL.Path)
	if !hmac.Equal([]byte(strings.ToLower(r.Header.Get("X-Signature"))), []byte(want)) {
		return "invalid signature"
	}
	return ""
}

func (s *Server) accountByAmojo(amojoID string) *account {
	for _, id := range s.order {
		if a := s.accounts[id]; a.spec.AmojoID == amojoID {
			return a
		}
	}
	return nil
}

// accountByScope resolves {channel_id}_{amojo_id} of a connected account.
func (s *Server) accountByScope(scope string) *account {
	ch, amojoID, ok := strings.Cut(scope, "_")
	if !ok || ch != s.opts.ChannelID {
		return nil
	}
	a := s.accountByAmojo(amojoID)
	if a == nil || a.chat == nil || !a.chat.connected {
		return nil
	}
	return a
}

func strictDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	return dec.Decode(v)
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.PathValue("id") != s.opts.ChannelID {
		amojoError(w, http.StatusNotFound, "channel not found")
		return
	}
	var req struct {
		AccountID            string `json:"account_id"`
		Title                string `json:"title"`
		HookAPIVersion       string `json:"hook_api_version"`
		IsTimeWindowDisabled bool   `json:"is_time_window_disabled"`
	}
	if err := strictDecode(body, &req); err != nil {
		amojoError(w, http.StatusBadRequest, "invalid body: "+err.Error())
		return
	}
	a := s.accountByAmojo(req.AccountID)
	if a == nil {
		amojoError(w, http.StatusNotFound, "account not found")
		return
	}
	if req.HookAPIVersion == "" {
		req.HookAPIVersion = "v2"
	}
	noteAccount(r, a.spec.ID)
	if a.chat == nil {
		a.chat = &chatState{chats: map[string]*Chat{}}
	}
	a.chat.connected, a.chat.title = true, req.Title
	a.chat.scopeID = s.opts.ChannelID + "_" + a.spec.AmojoID
	w.Header().Set("Content-Type", "application/json")
	w.Write(mustJSON(struct {
		AccountID            string `json:"account_id"`
		ScopeID              string `json:"scope_id"`
		Title                string `json:"title"`
		HookAPIVersion       string `json:"hook_api_version"`
		IsTimeWindowDisabled bool   `json:"is_time_window_disabled"`
	}{a.spec.AmojoID, a.chat.scopeID, req.Title, req.HookAPIVersion, req.IsTimeWindowDisabled}))
}

func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.PathValue("id") != s.opts.ChannelID {
		amojoError(w, http.StatusNotFound, "channel not found")
		return
	}
	var req struct {
		AccountID string `json:"account_id"`
	}
	if err := strictDecode(body, &req); err != nil {
		amojoError(w, http.StatusBadRequest, "invalid body")
		return
	}
	a := s.accountByAmojo(req.AccountID)
	if a == nil {
		amojoError(w, http.StatusNotFound, "account not found")
		return
	}
	if a.chat != nil {
		a.chat.connected = false
	}
	w.WriteHeader(http.StatusOK)
}

type amojoSender struct {
	ID      string `json:"id"`
	RefID   string `json:"ref_id,omitempty"`
	Name    string `json:"name"`
	Avatar  string `json:"avatar,omitempty"`
	Profile *struct {
		Phone string `json:"phone,omitempty"`
		Email string `json:"email,omitempty"`
	} `json:"profile,omitempty"`
	ProfileLink string `json:"profile_link,omitempty"`
}

type amojoMessage struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Media    string `json:"media"`
	FileName string `json:"file_name"`
	FileSize int    `json:"file_size"`
}

// handleNewMessage is POST /v2/origin/custom/{scope_id} with event_type
// new_message: a customer's message the integration relays into amoCRM.
// Types are strict, as amojo's are (a string timestamp is a 400).
func (s *Server) handleNewMessage(w http.ResponseWriter, r *http.Request, body []byte) {
	a := s.accountByScope(r.PathValue("id"))
	if a == nil {
		amojoError(w, http.StatusNotFound, "scope not found")
		return
	}
	noteAccount(r, a.spec.ID)
	var req struct {
		EventType string `json:"event_type"`
		Payload   struct {
			Timestamp      int64         `json:"timestamp"`
			MsecTimestamp  int64         `json:"msec_timestamp"`
			MsgID          string        `json:"msgid"`
			ConversationID string        `json:"conversation_id"`
			Sender         *amojoSender  `json:"sender"`
			Receiver       *amojoSender  `json:"receiver"`
			Message        *amojoMessage `json:"message"`
			Silent         bool          `json:"silent"`
		} `json:"payload"`
	}
	if err := strictDecode(body, &req); err != nil {
		amojoError(w, http.StatusBadRequest, "invalid body: "+err.Error())
		return
	}
	p, msg := req.Payload, req.Payload.Message
	switch {
	case req.EventType != "new_message":
		amojoError(w, http.StatusBadRequest, "unsupported event_type")
		return
	case p.MsgID == "" || p.ConversationID == "" || p.Timestamp == 0:
		amojoError(w, http.StatusBadRequest, "msgid, conversation_id and timestamp are required")
		return
	case p.Sender == nil || p.Sender.ID == "":
		amojoError(w, http.StatusBadRequest, "sender.id is required")
		return
	case msg == nil:
		amojoError(w, http.StatusBadRequest, "message is required")
		return
	}
	switch msg.Type {
	case "text":
		if msg.Text == "" {
			amojoError(w, http.StatusBadRequest, "message.text is required")
			return
		}
	case "file", "video", "picture":
		if msg.Media == "" || msg.FileName == "" || msg.FileSize <= 0 {
			amojoError(w, http.StatusBadRequest, "message.media, file_name and file_size are required")
			return
		}
	case "voice", "audio", "sticker", "location", "contact":
	default:
		amojoError(w, http.StatusBadRequest, "unsupported message.type")
		return
	}
	st := a.chat
	ch := st.chats[p.ConversationID]
	if ch == nil {
		ch = &Chat{ConversationID: p.ConversationID, AmoChatID: uuid(), ClientID: p.Sender.ID, ClientAmoID: uuid()}
		st.chats[p.ConversationID] = ch
		st.order = append(st.order, p.ConversationID)
	}
	if p.Sender.Name != "" {
		ch.Name = p.Sender.Name
	}
	if p.Sender.Avatar != "" {
		ch.Avatar = p.Sender.Avatar
	}
	if p.Sender.Profile != nil && p.Sender.Profile.Phone != "" {
		ch.Phone = p.Sender.Profile.Phone
	}
	if p.Sender.ProfileLink != "" {
		ch.ProfileLink = p.Sender.ProfileLink
	}
	amoID := ""
	for _, m := range ch.Messages { // msgid is the idempotency key
		if m.RefID == p.MsgID {
			amoID = m.AmoID
		}
	}
	if amoID == "" {
		amoID = uuid()
		ch.Messages = append(ch.Messages, ChatMessage{AmoID: amoID, RefID: p.MsgID, Incoming: true, Type: msg.Type,
			Text: msg.Text, Media: msg.Media, FileName: msg.FileName, FileSize: msg.FileSize, Time: p.Timestamp})
		if ch.ContactID == 0 && !p.Silent {
			s.incomingLead(a, ch)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(mustJSON(map[string]any{"new_message": struct {
		ConversationID string  `json:"conversation_id"`
		SenderID       string  `json:"sender_id"`
		ReceiverID     *string `json:"receiver_id"`
		MsgID          string  `json:"msgid"`
		RefID          string  `json:"ref_id"`
	}{p.ConversationID, p.Sender.ID, nil, amoID, p.MsgID}}))
}

// handleDeliveryStatus is POST .../{scope_id}/{msgid}/delivery_status for a
// manager's message (msgid = amojo's id from the hook).
func (s *Server) handleDeliveryStatus(w http.ResponseWriter, r *http.Request, body []byte) {
	a := s.accountByScope(r.PathValue("id"))
	if a == nil {
		amojoError(w, http.StatusNotFound, "scope not found")
		return
	}
	noteAccount(r, a.spec.ID)
	var req struct {
		StatusCode *int   `json:"status_code"`
		ErrorCode  int    `json:"error_code"`
		Error      string `json:"error"`
	}
	if err := strictDecode(body, &req); err != nil || req.StatusCode == nil {
		amojoError(w, http.StatusBadRequest, "status_code is required")
		return
	}
	switch *req.StatusCode {
	case 1, 2:
	case -1:
		if req.ErrorCode < 901 || req.ErrorCode > 905 || (req.ErrorCode == 905 && req.Error == "") {
			amojoError(w, http.StatusBadRequest, "error_code 901..905 (and error for 905) required with status -1")
			return
		}
	default:
		amojoError(w, http.StatusBadRequest, "status_code must be 1, 2 or -1")
		return
	}
	id := r.PathValue("msgid")
	for _, ch := range a.chat.chats {
		for i := range ch.Messages {
			m := &ch.Messages[i]
			if m.AmoID == id && !m.Incoming {
				m.Delivery, m.ErrorCode, m.Error = *req.StatusCode, req.ErrorCode, req.Error
				w.WriteHeader(http.StatusOK)
				return
			}
		}
	}
	amojoError(w, http.StatusNotFound, "message not found")
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request, _ []byte) {
	a := s.accountByScope(r.PathValue("id"))
	if a == nil {
		amojoError(w, http.StatusNotFound, "scope not found")
		return
	}
	var ch *Chat
	for _, c := range a.chat.chats {
		if c.AmoChatID == r.PathValue("conv") || c.ConversationID == r.PathValue("conv") {
			ch = c
		}
	}
	if ch == nil {
		amojoError(w, http.StatusNotFound, "chat not found")
		return
	}
	var msgs []map[string]any
	for _, m := range ch.Messages {
		msgs = append(msgs, map[string]any{"timestamp": m.Time, "message": map[string]any{"id": m.AmoID, "type": m.Type, "text": m.Text, "media": m.Media}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(mustJSON(map[string]any{"messages": msgs}))
}

// Chats returns the channel's conversations in an account, in the order
// they started; nil when the account never connected.
func (s *Server) Chats(accountID int) []Chat {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil || a.chat == nil {
		return nil
	}
	var out []Chat
	for _, id := range a.chat.order {
		c := *a.chat.chats[id]
		c.Messages = slices.Clone(c.Messages)
		out = append(out, c)
	}
	return out
}

// ScopeID returns the account's scope id once connected.
func (s *Server) ScopeID(accountID int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil || a.chat == nil || !a.chat.connected {
		return "", false
	}
	return a.chat.scopeID, true
}

// Hooks returns the outgoing hooks posted, oldest first.
func (s *Server) Hooks() []HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hooks)
}

// ManagerReply is a manager (userID) answering in the chat of
// conversationID from inside amoCRM: the message is stored and the v2
// outgoing hook is posted once, signed, without retries, to HookURL. It
// returns amojo's message id and the delivery.
func (s *Server) ManagerReply(ctx context.Context, accountID int, conversationID string, userID int, text string) (string, HookDelivery, error) {
	return s.ManagerSend(ctx, accountID, conversationID, userID, OutgoingMessage{Type: "text", Text: text})
}

// OutgoingMessage is what a manager writes in amoCRM's chat: text, or a
// file (picture, video, voice, audio, file) at Media, which the
// integration downloads.
type OutgoingMessage struct {
	Type     string
	Text     string
	Media    string
	FileName string
	FileSize int
}

// ManagerSend is ManagerReply with any message type.
func (s *Server) ManagerSend(ctx context.Context, accountID int, conversationID string, userID int, msg OutgoingMessage) (string, HookDelivery, error) {
	now := s.clock()
	s.mu.Lock()
	a := s.accounts[accountID]
	if a == nil || a.chat == nil || !a.chat.connected {
		s.mu.Unlock()
		return "", HookDelivery{}, fmt.Errorf("amosim: account %d has no connected channel", accountID)
	}
	ch := a.chat.chats[conversationID]
	u := a.user(userID)
	if ch == nil || u == nil {
		s.mu.Unlock()
		return "", HookDelivery{}, fmt.Errorf("amosim: no chat %q or user %d", conversationID, userID)
	}
	if msg.Type == "" {
		msg.Type = "text"
	}
	msgID := uuid()
	ch.Messages = append(ch.Messages, ChatMessage{AmoID: msgID, Type: msg.Type, Text: msg.Text, Media: msg.Media,
		FileName: msg.FileName, FileSize: msg.FileSize, SenderAmoID: u.AmojoID, Time: now.Unix()})
	hook := map[string]any{
		"account_id": a.spec.AmojoID,
		"time":       now.Unix(),
		"message": map[string]any{
			"receiver":       map[string]any{"id": ch.ClientAmoID, "phone": ch.Phone, "email": "", "client_id": ch.ClientID},
			"sender":         map[string]any{"id": u.AmojoID},
			"conversation":   map[string]any{"id": ch.AmoChatID, "client_id": ch.ConversationID},
			"timestamp":      now.Unix(),
			"msec_timestamp": now.UnixMilli(),
			"message": map[string]any{"id": msgID, "type": msg.Type, "text": msg.Text, "tag": "", "media": msg.Media,
				"thumbnail": "", "file_name": msg.FileName, "file_size": msg.FileSize},
		},
	}
	scope := a.chat.scopeID
	s.mu.Unlock()

	body := mustJSON(hook)
	d := HookDelivery{URL: strings.ReplaceAll(s.opts.HookURL, ":scope_id", scope), Body: body,
		Signature: AmojoHookSignature(s.opts.ChannelSecret, body)}
	if s.opts.HookURL == "" {
		d.Err = "no hook URL configured"
	} else {
		s.postHook(ctx, &d)
	}
	s.mu.Lock()
	s.hooks = appendCapped(s.hooks, d, s.opts.MaxRecorded)
	s.mu.Unlock()
	return msgID, d, nil
}

func (s *Server) postHook(ctx context.Context, d *HookDelivery) {
	s.wg.Add(1)
	defer s.wg.Done()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		d.Err = err.Error()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", d.Signature)
	resp, err := s.hc.Do(req)
	if err != nil {
		d.Err = err.Error()
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	d.Status = resp.StatusCode
}
