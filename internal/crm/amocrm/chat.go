package amocrm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The amoCRM Chats API (amojo) session of an account, when the gateway has
// a registered channel (SWITCHBOARD_AMOCRM_CHANNEL_ID, _SECRET, _CODE):
//   - after every install the channel is connected to the account
//     (JobAmojoConnect, retried); the scope id amojo answers is kept as the
//     account's link linkAmojoScope;
//   - every customer message of a bound channel goes into amoCRM's own
//     chat with the customer's name, phone and avatar (routing's JobChat,
//     whatever the binding's mirror mode: notes stay governed by it), so
//     managers see and answer it in the lead card and the chat list;
//   - a manager's answer comes back by the outgoing hook (hook.go) and
//     leaves through SendAsManager; its delivered, read and failed go back
//     to amojo with the delivery-status method (Status).

// JobAmojoConnect connects the channel to an account.
const JobAmojoConnect = "amocrm.amojo.connect"

// Links of the amojo session (crm_links kinds).
const (
	// linkAmojoScope ties "scope" to the account's scope id.
	linkAmojoScope = "amojo_scope"
	// linkAmojoChat ties a store contact to the conversation id its
	// messages went into amojo with; only a conversation this account was
	// given can be answered through it.
	linkAmojoChat = "amojo_chat"
	// linkAmojoIn ties amojo's id of a manager's message to the message
	// sent for it: a hook's job run twice sends once.
	linkAmojoIn = "amojo_in"
	// amojoOutPrefix marks routing.LinkOutbound remotes that are amojo
	// message ids (the delivery status goes there).
	amojoOutPrefix = "amojo:"
	// amojoRefused is linkAmojoScope's value when amojo refused to
	// connect the account.
	amojoRefused = "-"
)

// connectRetry is how long a customer message waits for the channel's
// connection before it is tried again.
const connectRetry = 30 * time.Second

// errNotConnected: the account's channel is not connected yet.
var errNotConnected = errors.New("amocrm: amojo channel not connected to the account yet")

// The Service relays customers' messages into amojo.
var _ routing.ChatConnector = (*Service)(nil)

// ChatEnabled says whether the gateway has a Chats API channel.
func (s *Service) ChatEnabled() bool { return s.cfg.ChannelID != "" && s.cfg.ChannelSecret != "" }

// amojoFor is the Chats API client for an account: the simulator's base
// for an account there, else amoCRM's or Kommo's amojo host.
func (s *Service) amojoFor(in *store.Integration) *AmojoClient {
	base := AmojoBase(in.Domain)
	if s.cfg.BaseURL != "" {
		if bu, err := url.Parse(s.cfg.BaseURL); err == nil && bu.Host != "" && strings.EqualFold(bu.Host, in.Domain) {
			base = bu.Scheme + "://" + bu.Host
		}
	}
	return &AmojoClient{ChannelID: s.cfg.ChannelID, Secret: s.cfg.ChannelSecret, BaseURL: base, HTTP: s.hc, Now: s.cfg.Now}
}

type amojoConnectJob struct {
	IntegrationID string `json:"integration_id"`
	// Disconnect undoes the connection (the integration was disabled).
	Disconnect bool `json:"disconnect,omitempty"`
}

// enqueueAmojoConnect queues the channel's connection after an install
// (or, with disconnect, its removal after the disable hook); nothing
// without a channel. Both share the account's key, so a reinstall's
// connection runs after the disable's removal.
func (s *Service) enqueueAmojoConnect(ctx context.Context, in *store.Integration, disconnect ...bool) error {
	if !s.ChatEnabled() {
		return nil
	}
	off := len(disconnect) > 0 && disconnect[0]
	err := s.store.Tx(ctx, func(tx *gorm.DB) error {
		_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobAmojoConnect, WorkspaceID: in.WorkspaceID, Key: "amojo:" + in.ID,
			Payload: amojoConnectJob{IntegrationID: in.ID, Disconnect: off}, MaxAttempts: 30})
		return err
	})
	if err != nil {
		return fmt.Errorf("amocrm: queue amojo connect: %w", err)
	}
	s.notify()
	return nil
}

// ConnectChats queues the channel's connection for every installed
// account that has no scope: run at start, so channel keys
// (SWITCHBOARD_AMOCRM_CHANNEL_*) set or corrected after accounts were
// installed reach them with no reinstall. An account amojo refused is
// tried again (the keys may be fixed now); one with a connection already
// queued, by this instance or another starting alongside, is left to it.
// It returns how many it queued.
func (s *Service) ConnectChats(ctx context.Context) (int, error) {
	if !s.ChatEnabled() {
		return 0, nil
	}
	ins, err := s.store.ListIntegrations(ctx, store.All)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range ins {
		in := &ins[i]
		if in.Type != Type || in.State == store.IntegrationUninstalled || in.ChatAccountID == "" {
			continue
		}
		scope, err := s.scopeOf(ctx, in)
		if err != nil {
			return n, err
		}
		if scope != "" && scope != amojoRefused {
			continue
		}
		key := "amojo:" + in.ID
		queued := false
		err = s.store.Tx(ctx, func(tx *gorm.DB) error {
			pending, err := queue.Pending(tx, JobAmojoConnect, key)
			if err != nil || pending {
				return err
			}
			queued = true
			_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobAmojoConnect, WorkspaceID: in.WorkspaceID, Key: key,
				Payload: amojoConnectJob{IntegrationID: in.ID}, MaxAttempts: 30})
			return err
		})
		if err != nil {
			return n, fmt.Errorf("amocrm: queue the amojo connection of %s: %w", in.ID, err)
		}
		if queued {
			n++
		}
	}
	if n > 0 {
		s.notify()
	}
	return n, nil
}

// handleAmojoConnect connects the channel to the account by its amojo id
// and keeps the scope id. It needs no OAuth token (amojo trusts the
// channel's signature), so it runs while the account waits for
// re-authorisation too; an uninstalled account is left alone (amoCRM
// disconnected the channel when it was disabled).
func (s *Service) handleAmojoConnect(ctx context.Context, j *queue.Job) error {
	var p amojoConnectJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	if !s.ChatEnabled() {
		return nil
	}
	in, err := s.store.GetIntegration(ctx, store.All, p.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if p.Disconnect {
		// amoCRM disconnects a disabled integration's channel itself;
		// this makes sure of it. Gone already (404) is done.
		if err := s.amojoFor(in).Disconnect(ctx, in.ChatAccountID); err != nil && !errors.Is(err, ErrNotFound) {
			return s.classifyAmojo(err)
		}
		return nil
	}
	if in.State == store.IntegrationUninstalled {
		return nil
	}
	if in.ChatAccountID == "" {
		return queue.Permanent(fmt.Errorf("amocrm: account %s has no amojo_id; its chats cannot be connected", in.ExternalID))
	}
	conn, err := s.amojoFor(in).Connect(ctx, in.ChatAccountID, "Switchboard")
	if err != nil {
		s.log.Warn("amocrm: amojo connect failed", "integration_id", in.ID, "err", err)
		if amojoRefusal(err) {
			// amojo refuses this account (a private channel not opened to
			// it, a wrong secret): customer messages stop waiting for a
			// connection until the next install tries again.
			if lerr := s.store.Tx(ctx, func(tx *gorm.DB) error {
				return store.ReplaceLink(tx, in.ID, linkAmojoScope, "scope", amojoRefused)
			}); lerr != nil {
				return lerr
			}
		}
		return s.classifyAmojo(err)
	}
	if want := s.cfg.ChannelID + "_" + in.ChatAccountID; conn.ScopeID != want {
		return queue.Permanent(fmt.Errorf("amocrm: amojo connect answered scope %q, not %q", conn.ScopeID, want))
	}
	// The job ends in the commit of the scope.
	if err := s.store.Tx(ctx, func(tx *gorm.DB) error {
		if err := store.ReplaceLink(tx, in.ID, linkAmojoScope, "scope", conn.ScopeID); err != nil {
			return err
		}
		return queue.Done(tx, j)
	}); err != nil {
		return err
	}
	s.log.Info("amocrm: amojo channel connected", "integration_id", in.ID, "scope_id", conn.ScopeID)
	return nil
}

// classifyAmojo turns a failed amojo call into what the queue does: any
// refusal but 429 (400 invalid data, 403 bad signature, 404 unknown
// channel or message) will be refused again and is not retried; the rest
// as the REST API's (Classify): 429 after RateLimitBackoff, amojo down
// (no answer, 502/503/504) waited out without spending attempts, another
// 5xx with the queue's backoff.
func (s *Service) classifyAmojo(err error) error {
	if amojoRefusal(err) {
		return queue.Permanent(err)
	}
	return crm.Classify(err, Signals())
}

// amojoRefusal says whether amojo answered a refusal that repeating
// cannot change: any 4xx but 429.
func amojoRefusal(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status != http.StatusTooManyRequests && e.Status < 500
}

// scopeOf is the account's scope id; "" while the channel is not
// connected.
func (s *Service) scopeOf(ctx context.Context, in *store.Integration) (string, error) {
	v, err := s.store.RemoteOf(ctx, in.ID, linkAmojoScope, "scope")
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return v, err
}

// Chat relays a customer's message into the account's chat of that
// customer: our message id is amojo's msgid (a send whose answer was lost
// is looked for in the chat before it goes again: chatLanded), the
// conversation is the
// customer's (one per customer of a channel), the sender carries the
// customer's name, phone (it becomes the contact's phone in amoCRM) and
// avatar. Files go as amojo's picture, video, voice, audio or file with
// the gateway's signed link, which amoCRM downloads. A new customer's chat
// is first created and linked to our contact (prepareChat), so amoCRM
// makes no incoming lead beside ours.
func (s *Service) Chat(ctx context.Context, d *routing.Delivery, m *store.MessageView) error {
	if m.Direction != store.Inbound {
		return nil
	}
	in := d.Integration
	scope, err := s.scopeOf(ctx, in)
	if err != nil {
		return err
	}
	switch scope {
	case "":
		return queue.RetryAfter(connectRetry, errNotConnected)
	case amojoRefused:
		return nil // amojo refused the connection: the notes still go
	}
	if m.Media != nil && m.Media.State == store.MediaPending && time.Since(m.CreatedAt) < mediaWait {
		// Its link would not open yet; amoCRM downloads it once.
		return queue.RetryAfter(5*time.Second, errors.New("amocrm: file still downloading"))
	}
	ct := m.Contact
	if ct == nil {
		ct = &store.Contact{ID: m.ContactID}
	}
	conv := ct.ID
	if err := s.prepareChat(ctx, d, ct, scope, conv); err != nil {
		return err
	}
	if err := s.store.Tx(ctx, func(tx *gorm.DB) error {
		return store.PutLink(tx, in.ID, linkAmojoChat, ct.ID, conv)
	}); err != nil {
		return err
	}
	when := m.CreatedAt
	if m.ProviderAt != nil {
		when = *m.ProviderAt
	}
	msg := AmojoMessage{Timestamp: when.Unix(), MsecTimestamp: when.UnixMilli(), MsgID: m.ID, ConversationID: conv,
		Sender: s.amojoSender(d, ct), Message: s.amojoContent(m, ct, lang(in))}
	landed, err := s.chatLanded(ctx, d, scope, msg)
	if err != nil || landed {
		return err
	}
	if _, err := s.amojoFor(in).SendMessage(ctx, scope, msg); err != nil {
		if errors.Is(err, ErrNotFound) {
			// The scope is gone (disconnected in amoCRM): connect again and
			// send after.
			return s.reconnect(ctx, in, err)
		}
		return s.classifyAmojo(err)
	}
	return s.store.DeleteLinks(ctx, in.ID, linkAmojoTry, []string{m.ID})
}

// linkAmojoTry marks a customer's message sent into amojo whose answer is
// not seen yet (chatLanded).
const linkAmojoTry = "amojo_try"

// chatLanded marks the message as sent to amojo and, when an earlier send
// is still marked (its answer was lost, or the process died), reads the
// chat's history for it first: true when it is there already (its time,
// type and text or file), so it is not sent again. amojo's documentation
// names msgid our id of the message but does not say that a second
// new_message with the same msgid adds nothing, so the gateway does not
// count on it. A history that cannot be read fails the call: sending
// blind could send twice.
func (s *Service) chatLanded(ctx context.Context, d *routing.Delivery, scope string, msg AmojoMessage) (bool, error) {
	in := d.Integration
	doubt, err := s.store.MarkMirrorAttempts(ctx, in.ID, d.Binding.ID, linkAmojoTry, []string{msg.MsgID})
	if err != nil || !doubt[msg.MsgID] {
		return false, err
	}
	hist, err := s.amojoFor(in).History(ctx, scope, msg.ConversationID)
	if err != nil {
		return false, s.classifyAmojo(err)
	}
	for _, h := range hist {
		if h.Timestamp == msg.Timestamp && h.Message.Type == msg.Message.Type && h.Message.Text == msg.Message.Text && h.Message.Media == msg.Message.Media {
			s.log.Info("amocrm: a message found in the amoCRM chat after an unfinished send, not sent again",
				"integration_id", in.ID, "message_id", msg.MsgID)
			return true, s.store.DeleteLinks(ctx, in.ID, linkAmojoTry, []string{msg.MsgID})
		}
	}
	return false, nil
}

// mediaWait is how long a customer's file still downloading holds its
// message back before it goes with its text only.
const mediaWait = 10 * time.Minute

// amojoSender is the customer as amoCRM's chat shows them.
func (s *Service) amojoSender(d *routing.Delivery, ct *store.Contact) AmojoSender {
	snd := AmojoSender{ID: ct.ID, Name: cleanLine(cmp.Or(ct.Name, ct.Username, ct.Phone, ct.ExternalID, ct.ID))}
	if u, err := url.Parse(ct.AvatarURL); err == nil && u.Scheme == "https" && u.Host != "" {
		snd.Avatar = ct.AvatarURL
	}
	if ct.Phone != "" {
		snd.Profile = &AmojoProfile{Phone: ct.Phone}
	}
	if channel.Type(d.Channel.Type) == channel.Instagram && ct.Username != "" {
		snd.ProfileLink = "https://www.instagram.com/" + url.PathEscape(ct.Username)
	}
	return snd
}

// amojoTypes are amojo's message types for the messenger's file kinds.
var amojoTypes = map[channel.MsgType]string{
	channel.MsgImage: "picture", channel.MsgSticker: "picture", channel.MsgVideo: "video",
	channel.MsgVoice: "voice", channel.MsgAudio: "audio", channel.MsgDocument: "file",
}

// amojoContent is a message as amojo takes it: a stored file as its kind
// with the signed link (the caption, if any, is the text); anything else,
// a file not stored included, as text rendered for operators.
func (s *Service) amojoContent(m *store.MessageView, ct *store.Contact, l string) AmojoContent {
	r := s.render(m, ct, l)
	text := r.Text
	if r.Quote != "" {
		text = "> " + strings.ReplaceAll(strings.TrimSpace(r.Quote), "\n", "\n> ") + "\n" + text
	}
	if t, ok := amojoTypes[channel.MsgType(m.Type)]; ok && m.Media != nil && len(r.Files) > 0 && r.Files[0].URL != "" {
		f := r.Files[0]
		return AmojoContent{Type: t, Text: cmp.Or(f.Caption, m.Text), Media: f.URL, FileName: f.Name, FileSize: max(m.Media.Size, 1)}
	}
	if strings.TrimSpace(text) == "" {
		text = body(r)
	}
	if strings.TrimSpace(text) == "" {
		text = "[" + m.Type + "]"
	}
	return AmojoContent{Type: "text", Text: text}
}

// Status reports what became of a manager's message that came from amojo:
// delivered (1), read (2) or failed (-1 with error 905 and the
// messenger's words). Messages from elsewhere have nothing to report
// here. amojo's 404 (the message is gone from its chat) ends it.
func (s *Service) Status(ctx context.Context, d *routing.Delivery, m *store.MessageView) error {
	in := d.Integration
	remote, err := s.store.RemoteOf(ctx, in.ID, routing.LinkOutbound, m.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	amoID, ok := strings.CutPrefix(remote, amojoOutPrefix)
	if !ok || !s.ChatEnabled() {
		return nil
	}
	var st AmojoDeliveryStatus
	switch channel.Status(m.Status) {
	case channel.StatusDelivered:
		st.StatusCode = DeliveryDelivered
	case channel.StatusRead:
		st.StatusCode = DeliveryRead
	case channel.StatusFailed:
		// The messenger's own words, after a sentence in the account's
		// language; a closed window is worded as the gateway's pages do.
		l := lang(in)
		why := fmt.Sprintf(amojoText(l, "not_delivered"), cmp.Or(strings.TrimSpace(m.ErrorTitle+" "+m.ErrorDetail), amojoText(l, "no_reason")))
		if m.ErrorCode == 131047 {
			why = crm.WindowClosed(l, d.Channel.Type)
		}
		st = AmojoDeliveryStatus{StatusCode: DeliveryError, ErrorCode: 905, Error: cleanLine(why)}
	default:
		return nil
	}
	return s.reportDelivery(ctx, in, amoID, st)
}

// reportDelivery sends a delivery status; a message amojo no longer has
// is logged and dropped.
func (s *Service) reportDelivery(ctx context.Context, in *store.Integration, amoID string, st AmojoDeliveryStatus) error {
	scope, err := s.scopeOf(ctx, in)
	if err != nil || scope == "" || scope == amojoRefused {
		return err
	}
	err = s.amojoFor(in).DeliveryStatus(ctx, scope, amoID, st)
	if errors.Is(err, ErrNotFound) {
		s.log.Warn("amocrm: amojo has no such message for its status", "integration_id", in.ID, "amojo_msgid", amoID)
		return nil
	}
	return s.classifyAmojo(err)
}
