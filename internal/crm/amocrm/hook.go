package amocrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/crmhttp"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// JobAmojoHook sends a manager's message that amojo's outgoing hook
// brought.
const JobAmojoHook = "amocrm.amojo.hook"

// amojoHookPath is where the channel's outgoing hook is registered, with
// amoCRM's ":scope_id" placeholder (contract §6.1).
const amojoHookPath = "/amocrm/amojo/"

// maxAmojoHook caps the hook's body: a message with its links and markup
// is a few kilobytes.
const maxAmojoHook = 256 << 10

// eventAmojoHook is the crm_events kind of a kept hook.
const eventAmojoHook = "amojo.message"

type amojoHookJob struct {
	EventID string `json:"event_id"`
}

// ServeAmojoHook takes amojo's outgoing hook (a manager wrote in amoCRM's
// chat): the X-Signature over the raw body is checked with the channel
// secret (401 and nothing kept when it is missing or wrong), the scope in
// the path must be the one this gateway connected and the body's account
// the scope's; the hook is then kept with its job, once per amojo message
// id (amojo posts once, without retries; a copy posted again is answered
// 200 and sends nothing). The message leaves in the queue — or, when the
// account's integration was uninstalled meanwhile, is reported failed
// there, so the manager sees why rather than a message that hangs.
func (s *Service) ServeAmojoHook(w http.ResponseWriter, r *http.Request) {
	if !s.ChatEnabled() {
		s.fail(w, r, fault.New(fault.NotFound, "amojo_not_configured", "the amoCRM chat channel is not configured on this gateway"))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAmojoHook))
	if err != nil {
		s.fail(w, r, fault.New(fault.TooLarge, "body_too_large", "the hook's body is too large"))
		return
	}
	h, err := ParseAmojoHook(s.cfg.ChannelSecret, raw, r.Header.Get("X-Signature"))
	if errors.Is(err, ErrBadSignature) {
		s.log.Warn("amocrm: amojo hook refused", "err", err)
		s.fail(w, r, fault.New(fault.Unauthorized, "signature_invalid", "the hook's X-Signature does not verify"))
		return
	}
	if err != nil {
		s.fail(w, r, fault.New(fault.Malformed, "hook_invalid", "the hook's body is not an amojo v2 message: "+err.Error()))
		return
	}
	scope := strings.TrimPrefix(r.URL.Path, amojoHookPath)
	in, err := s.integrationByScope(r.Context(), scope)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if h.AccountID != in.ChatAccountID {
		s.fail(w, r, fault.New(fault.Forbidden, "account_mismatch", "the hook's account_id is not the scope's account"))
		return
	}
	ev := &store.CRMEvent{IntegrationID: in.ID, Kind: eventAmojoHook, DedupKey: "amojo:" + h.Message.Message.ID, Payload: string(raw)}
	err = crm.NewInbox(s.store, s.notify).Keep(r.Context(), ev, func(ev *store.CRMEvent) queue.NewJob {
		return queue.NewJob{Kind: JobAmojoHook, WorkspaceID: in.WorkspaceID,
			// One chat's answers leave in the order they were written.
			Key: "amojohook:" + in.ID + ":" + h.Message.Conversation.ClientID, Payload: amojoHookJob{EventID: ev.ID}, MaxAttempts: 20}
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// integrationByScope is the account a scope id ({channel_id}_{amojo_id})
// of this gateway's channel names, connected by this gateway; an
// uninstalled one too (its scope stays known), whose hooks' messages are
// reported failed rather than dropped.
func (s *Service) integrationByScope(ctx context.Context, scope string) (*store.Integration, error) {
	unknown := fault.New(fault.NotFound, "scope_unknown", "no connected account has this scope id")
	amojoID, ok := strings.CutPrefix(scope, s.cfg.ChannelID+"_")
	if !ok || amojoID == "" {
		return nil, unknown
	}
	in, err := s.store.IntegrationByChatAccount(ctx, Type, amojoID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknown
	}
	if err != nil {
		return nil, err
	}
	if cur, err := s.scopeOf(ctx, in); err != nil {
		return nil, err
	} else if cur != scope {
		return nil, unknown
	}
	return in, nil
}

// handleAmojoHook sends a manager's message to the customer of the chat:
// the conversation must be one this account was given (linkAmojoChat), so
// a hook can answer only its own account's customers; the message leaves
// through SendAsManager, which records amojo's id with it in the
// accepting transaction (a second run sends nothing) and lets the manager
// (the amoCRM user with the sender's amojo id) claim a first-responder
// customer. A message the messenger cannot take (window closed, file
// refused, the integration uninstalled) is reported failed to amojo at
// once, in the account's language.
func (s *Service) handleAmojoHook(ctx context.Context, j *queue.Job) error {
	var p amojoHookJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	ev, err := s.store.GetCRMEvent(ctx, p.EventID)
	if err != nil {
		return queue.Permanent(err)
	}
	var h AmojoHook
	if err := json.Unmarshal([]byte(ev.Payload), &h); err != nil {
		return queue.Permanent(err)
	}
	in, err := s.store.GetIntegration(ctx, store.All, ev.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	amoID := h.Message.Message.ID
	if _, err := s.store.RemoteOf(ctx, in.ID, linkAmojoIn, amoID); err == nil {
		return nil // sent by an earlier run
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	l := lang(in)
	fail := func(code int, why string) error {
		s.log.Warn("amocrm: manager's message not sent", "integration_id", in.ID, "amojo_msgid", amoID, "why", why)
		return s.reportDelivery(ctx, in, amoID, AmojoDeliveryStatus{StatusCode: DeliveryError, ErrorCode: code, Error: why})
	}
	if in.State == store.IntegrationUninstalled {
		return fail(902, amojoText(l, "uninstalled"))
	}
	contactID, err := s.store.LocalOf(ctx, in.ID, linkAmojoChat, h.Message.Conversation.ClientID)
	if errors.Is(err, store.ErrNotFound) || h.Message.Conversation.ClientID == "" {
		return fail(904, amojoText(l, "not_ours"))
	}
	if err != nil {
		return err
	}
	ct, err := s.store.ContactByID(ctx, contactID)
	if errors.Is(err, store.ErrNotFound) {
		return fail(901, amojoText(l, "customer_deleted"))
	}
	if err != nil {
		return err
	}
	if _, err := s.store.BindingOf(ctx, in.ID, ct.ChannelID); errors.Is(err, store.ErrNotFound) {
		return fail(902, amojoText(l, "unbound"))
	} else if err != nil {
		return err
	}
	ch, err := s.store.GetChannel(ctx, store.All, ct.ChannelID)
	if err != nil {
		return err
	}
	req, err := s.managerRequest(ctx, ct, &h)
	if err != nil {
		if fe := fault.As(err); fe != nil {
			return fail(905, refusalText(l, ch.Type, fe))
		}
		return err
	}
	userID, err := s.userByAmojo(ctx, in, h.Message.Sender.ID)
	if err != nil {
		return Classify(err)
	}
	// The job ends in the commit of the message it sends (the first
	// responder's claim after it is best effort).
	_, err = s.SendAsManager(ctx, in, userID, ct.ChannelID, req, func(tx *gorm.DB, m *store.Message) error {
		if err := store.PutLink(tx, in.ID, linkAmojoIn, amoID, m.ID); err != nil {
			return err
		}
		if err := store.PutLink(tx, in.ID, routing.LinkOutbound, m.ID, amojoOutPrefix+amoID); err != nil {
			return err
		}
		return queue.Done(tx, j)
	})
	if fe := fault.As(err); fe != nil && fe.Kind != fault.Unavailable && fe.Kind != fault.Upstream {
		return fail(905, refusalText(l, ch.Type, fe))
	}
	return err
}

// managerRequest is the send of a manager's message: text as text; a file
// fetched from amoCRM through the guarded client (never a private address
// unless allowed), capped at the messenger's limit, and sent as an upload
// with the text as its caption.
func (s *Service) managerRequest(ctx context.Context, ct *store.Contact, h *AmojoHook) (messaging.SendRequest, error) {
	mm := h.Message.Message
	req := messaging.SendRequest{To: ct.ExternalID, Text: mm.Text}
	if ct.Phone != "" {
		req.To = ct.Phone
	}
	kind, isFile := map[string]channel.MsgType{"picture": channel.MsgImage, "video": channel.MsgVideo, "voice": channel.MsgVoice,
		"audio": channel.MsgAudio, "file": channel.MsgDocument, "sticker": channel.MsgSticker}[mm.Type]
	if !isFile || mm.Media == "" {
		if strings.TrimSpace(mm.Text) == "" {
			return req, fault.Newf(fault.Invalid, "message_unsupported", "Switchboard cannot send amoCRM's %q message", mm.Type)
		}
		return req, nil
	}
	data, mime, err := s.fetchFile(ctx, mm.Media, kind)
	if err != nil {
		return req, err
	}
	name := mm.FileName
	if name == "" {
		if u, err := url.Parse(mm.Media); err == nil {
			name = path.Base(u.Path)
		}
	}
	req.Media = &messaging.SendMedia{Type: string(kind), Filename: name, Caption: mm.Text}
	req.Upload = &messaging.Upload{Filename: name, MimeType: mime, Data: data}
	return req, nil
}

// fetchFile downloads a manager's file. A refused or unreachable file is
// a fault the manager is told about; amoCRM answering 5xx is retried.
func (s *Service) fetchFile(ctx context.Context, raw string, kind channel.MsgType) ([]byte, string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", fault.New(fault.Invalid, "media_url_invalid", "the file's link is not an http(s) URL")
	}
	limit := int64(100 << 20)
	if l, ok := media.Limits[string(kind)]; ok {
		limit = l
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, "", fault.New(fault.Invalid, "media_url_invalid", "the file's link is not usable")
	}
	resp, err := s.hc.Do(hreq)
	if err != nil {
		return nil, "", fmt.Errorf("amocrm: fetch a manager's file: %w", crmhttp.StripURL(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, "", fmt.Errorf("amocrm: fetch a manager's file: HTTP %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, "", fault.Newf(fault.Invalid, "media_unavailable", "the file could not be downloaded (HTTP %d)", resp.StatusCode)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("amocrm: fetch a manager's file: %w", crmhttp.StripURL(err))
	}
	if n > limit {
		return nil, "", fault.Newf(fault.Invalid, "media_too_large", "%s files are limited to %d bytes by the messenger", kind, limit)
	}
	return buf.Bytes(), resp.Header.Get("Content-Type"), nil
}

// userByAmojo is the account's user with this amojo id ("" when none: the
// message is still sent, with no first-responder claim). The users list
// is read again when the id is not known yet (a user added since).
func (s *Service) userByAmojo(ctx context.Context, in *store.Integration, amojoID string) (string, error) {
	if amojoID == "" {
		return "", nil
	}
	key := in.ID + "|" + amojoID
	if v, ok := s.amojoUsers.Load(key); ok {
		return v.(string), nil
	}
	users, err := s.API(in).Users(ctx)
	if err != nil {
		return "", err
	}
	found := ""
	for _, u := range users {
		if u.AmojoID != "" {
			s.amojoUsers.Store(in.ID+"|"+u.AmojoID, strconv.Itoa(u.ID))
		}
		if u.AmojoID == amojoID {
			found = strconv.Itoa(u.ID)
		}
	}
	return found, nil
}
