package messaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// Windows during which a business may write freely after the customer's
// last message.
const (
	ServiceWindow    = 24 * time.Hour
	HumanAgentWindow = 7 * 24 * time.Hour // Instagram HUMAN_AGENT tag
)

// SendRequest is what an operator asks to send.
type SendRequest struct {
	To       string            `json:"to"`
	Text     string            `json:"text"`
	Media    *SendMedia        `json:"media"`
	Template *channel.Template `json:"template"`
	ReplyTo  string            `json:"reply_to"`
	// Upload is a file sent with the request (multipart), instead of a URL.
	Upload *Upload `json:"-"`
	// OnStored runs inside the transaction that stores the message, for a
	// CRM to link its own ids to it.
	OnStored func(tx *gorm.DB, m *store.Message) error `json:"-"`
	// Automatic marks the gateway's own automatic message (the branch
	// menu): the dialog counter neither holds nor counts it, since the
	// customer wrote first and waits for it. Never set from a request a
	// user or API client makes (no JSON name).
	Automatic bool `json:"-"`
	// Author is who wrote the message (Kind and, when known, UserID and
	// Name), recorded with it for the chat views; nil records none. Set
	// by the caller that knows the writer, never from a request body.
	Author *store.MessageAuthor `json:"-"`
}

type SendMedia struct {
	URL      string `json:"url"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
	// Type is image, video, audio, voice, document or sticker; guessed
	// from the file when empty.
	Type string `json:"type"`
}

type Upload struct {
	Filename string
	MimeType string
	Data     []byte
}

// bad is a request whose content the messenger would refuse.
func bad(code, format string, a ...any) *fault.Error {
	return fault.Newf(fault.Invalid, code, format, a...)
}

type sendJob struct {
	MessageID string `json:"message_id"`
	// Automatic: the gateway's own message, outside the dialog counter.
	Automatic bool `json:"automatic,omitempty"`
}

type fetchMediaJob struct {
	MediaID string `json:"media_id"`
}

type profileJob struct {
	ContactID string `json:"contact_id"`
}

// Send validates a request, stores the message as queued together with the
// job that will deliver it, and returns the message.
func (s *Service) Send(ctx context.Context, scope store.Scope, channelID string, req SendRequest) (*store.Message, error) {
	ch, err := s.store.GetChannel(ctx, scope, channelID)
	if err != nil {
		return nil, err
	}
	switch ch.State {
	case store.ChannelDisabled:
		return nil, fault.New(fault.Conflict, "channel_disabled", "the channel is disabled")
	case store.ChannelError:
		return nil, fault.New(fault.Conflict, "channel_error", "the channel is in error state: "+ch.StateReason)
	}
	ws, err := s.store.GetWorkspace(ctx, store.All, ch.WorkspaceID)
	if err != nil {
		return nil, err
	}
	typ := channel.Type(ch.Type)
	to, err := s.recipient(typ, req.To, phone.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion})
	if err != nil {
		return nil, err
	}
	msgType, err := s.validate(typ, &req)
	if err != nil {
		return nil, err
	}
	var quoted *store.Message
	if req.ReplyTo != "" {
		q, err := s.store.GetMessage(ctx, scope, req.ReplyTo)
		if err != nil || q.ChannelID != ch.ID {
			return nil, bad("reply_to_not_found", "reply_to %q is not a message of this channel", req.ReplyTo)
		}
		if q.ExternalID == nil {
			return nil, bad("reply_to_not_sent", "reply_to %q has not reached the messenger yet", req.ReplyTo)
		}
		quoted = &q.Message
	}
	humanAgent := false
	if msgType != channel.MsgTemplate {
		humanAgent, err = s.checkWindow(ctx, ch, to)
		if err != nil {
			return nil, err
		}
	}

	var mediaRow *store.Media
	if req.Media != nil || req.Upload != nil {
		mediaRow, err = s.prepareMedia(ctx, ch, &req, msgType)
		if err != nil {
			return nil, err
		}
	}
	m := &store.Message{
		WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, Direction: store.Outbound,
		Type: string(msgType), Text: req.Text, HumanAgent: humanAgent,
		Status: string(channel.StatusQueued),
	}
	if req.Media != nil && req.Media.Caption != "" {
		m.Text = req.Media.Caption
	}
	if req.Template != nil {
		b, _ := json.Marshal(req.Template)
		t := string(b)
		m.Template = &t
		if m.Text, err = s.templateText(ctx, ch.ID, req.Template); err != nil {
			return nil, err
		}
	}
	if quoted != nil {
		m.QuotedMessageID, m.QuotedExternalID = &quoted.ID, *quoted.ExternalID
	}
	err = s.store.Tx(ctx, func(tx *gorm.DB) error {
		contact, err := store.UpsertContact(tx, ch, to, nil)
		if err != nil {
			return err
		}
		m.ContactID = contact.ID
		if mediaRow != nil {
			if err := store.InsertMedia(tx, mediaRow); err != nil {
				return fmt.Errorf("messaging: %w", err)
			}
			m.MediaID = &mediaRow.ID
		}
		if _, err := store.InsertMessage(tx, m); err != nil {
			return err
		}
		if req.Author != nil {
			a := *req.Author
			a.MessageID, a.WorkspaceID = m.ID, m.WorkspaceID
			if err := store.InsertMessageAuthor(tx, &a); err != nil {
				return err
			}
		}
		if req.OnStored != nil {
			if err := req.OnStored(tx, m); err != nil {
				return err
			}
		}
		// An answer is an answer when it is written, not when Meta takes
		// it: the hooks see it in this transaction.
		if err := s.messageStored(tx, ch, m); err != nil {
			return err
		}
		_, err = queue.Enqueue(tx, queue.NewJob{
			Kind: JobSend, WorkspaceID: ch.WorkspaceID, Lane: ch.ID,
			// One customer's messages go out in order, one at a time.
			Key:     sendKey(ch.ID, contact.ID),
			Payload: sendJob{MessageID: m.ID, Automatic: req.Automatic},
		})
		if err != nil || req.Automatic {
			return err
		}
		// A person answered: the customer's messages are read.
		return EnqueueMarkRead(tx, ch.WorkspaceID, ch.ID, contact.ID)
	})
	if err != nil {
		if mediaRow != nil && mediaRow.StorageKey != "" {
			s.files.Delete(context.WithoutCancel(ctx), mediaRow.StorageKey)
		}
		return nil, fmt.Errorf("messaging: queue send: %w", err)
	}
	s.metrics.Messages.WithLabelValues(ch.Type, store.Outbound, string(channel.StatusQueued)).Inc()
	s.notify()
	return m, nil
}

// recipient reads "to" as the messenger addresses customers, numbers as
// the workspace says people write them.
func (s *Service) recipient(typ channel.Type, to string, numbers phone.Options) (channel.Customer, error) {
	to = strings.TrimSpace(to)
	if to == "" {
		return channel.Customer{}, bad("to_required", "\"to\" is required")
	}
	if typ == channel.Instagram {
		for _, r := range to {
			if r < '0' || r > '9' {
				return channel.Customer{}, bad("invalid_recipient", "Instagram recipients are Instagram-scoped ids (digits), got %q", to)
			}
		}
		return channel.Customer{ExternalID: to}, nil
	}
	e164, err := phone.Normalize(to, numbers)
	if err != nil {
		return channel.Customer{}, bad("invalid_phone", "%q is not a phone number", to)
	}
	return channel.Customer{ExternalID: phone.Digits(e164), Phone: e164}, nil
}

func (s *Service) validate(typ channel.Type, req *SendRequest) (channel.MsgType, error) {
	kinds := 0
	if req.Media != nil || req.Upload != nil {
		kinds++
	}
	if req.Template != nil {
		kinds++
	}
	if kinds > 1 {
		return "", bad("ambiguous_message", "send either media or a template, not both")
	}
	switch {
	case req.Template != nil:
		if typ != channel.WhatsApp {
			return "", bad("template_unsupported", "templates exist only on WhatsApp")
		}
		if req.Template.Name == "" || req.Template.Language == "" {
			return "", bad("template_invalid", "template needs \"name\" and \"language\"")
		}
		if req.Text != "" {
			return "", bad("ambiguous_message", "a template carries its own text; drop \"text\"")
		}
		return channel.MsgTemplate, nil
	case req.Media != nil || req.Upload != nil:
		if req.Media == nil {
			req.Media = &SendMedia{}
		}
		if req.Media.Caption == "" {
			req.Media.Caption = req.Text
		}
		if utf8.RuneCountInString(req.Media.Caption) > 1024 {
			return "", bad("caption_too_long", "caption is limited to 1024 characters")
		}
		if req.Upload == nil {
			u, err := url.Parse(req.Media.URL)
			if req.Media.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return "", bad("media_url_invalid", "media.url must be an http(s) URL")
			}
		}
		t := channel.MsgType(req.Media.Type)
		if t == "" {
			t = guessType(req)
		}
		if !t.IsMedia() {
			return "", bad("media_type_invalid", "media.type must be image, video, audio, voice, document or sticker")
		}
		if typ == channel.Instagram && (t == channel.MsgSticker) {
			return "", bad("media_type_invalid", "Instagram does not take stickers")
		}
		// Only an upload's type and size are known here; a URL's are known
		// once Meta fetches it, so links are left to the messenger.
		if req.Upload != nil {
			if err := s.checkUpload(typ, t, req.Upload); err != nil {
				return "", err
			}
		}
		return t, nil
	}
	text := strings.TrimSpace(req.Text)
	if text == "" {
		return "", bad("text_required", "send \"text\", \"media\" or \"template\"")
	}
	limit := 4096
	if typ == channel.Instagram {
		limit = 1000
	}
	if utf8.RuneCountInString(req.Text) > limit {
		return "", bad("text_too_long", "text is limited to %d characters on %s", limit, typ)
	}
	return channel.MsgText, nil
}

// uploadMIME is the type an upload is stored and sent with: as declared,
// or sniffed when the client declared none.
func uploadMIME(up *Upload) string {
	if up.MimeType == "" || up.MimeType == "application/octet-stream" {
		return http.DetectContentType(up.Data)
	}
	return up.MimeType
}

// checkUpload refuses an upload the messenger would refuse after taking
// it (an SVG as an image, an HTML page as a document), so the operator
// hears why now rather than reading Meta's "(#100) Invalid parameter"
// later. Messengers that declare no rules are not checked.
func (s *Service) checkUpload(typ channel.Type, kind channel.MsgType, up *Upload) error {
	p, ok := s.registry.ByType(typ)
	if !ok || p.Media == nil {
		return nil
	}
	mimeType := uploadMIME(up)
	r := p.Media.Check(kind, mimeType, int64(len(up.Data)))
	if r == nil {
		return nil
	}
	if r.Reason == channel.MediaTooLarge {
		return bad(channel.MediaTooLarge, "%s files are limited to %d bytes on %s; this one is %d bytes",
			kind, r.Rule.MaxBytes, typ, r.Size)
	}
	msg := fmt.Sprintf("%s does not take %q as %s; accepted: %s", typ, r.MimeType, kind, strings.Join(r.Rule.Types, ", "))
	if len(r.Rule.Types) == 0 {
		msg = fmt.Sprintf("%s does not take %s files", typ, kind)
	}
	if kind != channel.MsgDocument && p.Media.Accepts(channel.MsgDocument, mimeType) {
		msg += `; send it as "document" instead`
	}
	return bad(channel.MediaTypeUnsupported, "%s", msg)
}

func guessType(req *SendRequest) channel.MsgType {
	mime, name := "", req.Media.URL
	if req.Upload != nil {
		// The sniffed type when none was declared, as prepareMedia stores
		// it: a PNG sent as octet-stream is an image, not a document.
		mime, name = uploadMIME(req.Upload), req.Upload.Filename
	}
	switch {
	case strings.HasPrefix(mime, "image/webp"):
		return channel.MsgSticker
	case strings.HasPrefix(mime, "image/"):
		return channel.MsgImage
	case strings.HasPrefix(mime, "video/"):
		return channel.MsgVideo
	case strings.HasPrefix(mime, "audio/ogg"):
		return channel.MsgVoice
	case strings.HasPrefix(mime, "audio/"):
		return channel.MsgAudio
	case mime != "":
		return channel.MsgDocument
	}
	name = strings.ToLower(name)
	for ext, t := range map[string]channel.MsgType{".jpg": channel.MsgImage, ".jpeg": channel.MsgImage, ".png": channel.MsgImage,
		".mp4": channel.MsgVideo, ".3gp": channel.MsgVideo, ".ogg": channel.MsgVoice, ".opus": channel.MsgVoice,
		".mp3": channel.MsgAudio, ".m4a": channel.MsgAudio, ".aac": channel.MsgAudio, ".amr": channel.MsgAudio, ".webp": channel.MsgSticker} {
		if strings.HasSuffix(name, ext) {
			return t
		}
	}
	return channel.MsgDocument
}

// checkWindow refuses free-form messages outside the customer-service
// window up front, rather than letting Meta fail them later. On Instagram
// a message between 24 hours and 7 days goes out with HUMAN_AGENT.
func (s *Service) checkWindow(ctx context.Context, ch *store.Channel, to channel.Customer) (bool, error) {
	c, err := s.store.GetContact(ctx, ch.ID, to.ExternalID)
	var last *time.Time
	if err == nil {
		last = c.LastInboundAt
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	since := time.Duration(1<<63 - 1)
	if last != nil {
		since = time.Since(*last)
	}
	if since <= ServiceWindow {
		return false, nil
	}
	if ch.Type == string(channel.Instagram) && since <= HumanAgentWindow {
		return true, nil
	}
	msg := "the customer has not written in the last 24 hours; only a template can be sent"
	if ch.Type == string(channel.Instagram) {
		msg = "the customer has not written in the last 7 days; Instagram allows no message until they write again"
	}
	if last == nil {
		msg = "the customer has never written to this channel; " + map[bool]string{true: "Instagram allows no message until they write", false: "only a template can be sent"}[ch.Type == string(channel.Instagram)]
	}
	return false, fault.New(fault.Invalid, "window_closed", msg)
}

// prepareMedia builds the media row of an outbound file: a link passed on,
// or an upload kept in the media store.
func (s *Service) prepareMedia(ctx context.Context, ch *store.Channel, req *SendRequest, t channel.MsgType) (*store.Media, error) {
	now := store.Now()
	row := &store.Media{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID,
		Filename: req.Media.Filename, CreatedAt: now, UpdatedAt: now}
	if req.Upload == nil {
		row.SourceURL, row.State = req.Media.URL, store.MediaRemote
		return row, nil
	}
	up := req.Upload
	if limit, ok := media.Limits[string(t)]; ok && int64(len(up.Data)) > limit {
		// Invalid, as the provider's own check says it: one code, one status.
		return nil, fault.Newf(fault.Invalid, "media_too_large",
			"%s files are limited to %d bytes by the messenger", t, limit)
	}
	mime := uploadMIME(up)
	sum := sha256.Sum256(up.Data)
	row.MimeType, row.Size, row.SHA256 = mime, int64(len(up.Data)), hex.EncodeToString(sum[:])
	if row.Filename == "" {
		row.Filename = up.Filename
	}
	row.StorageKey = ch.WorkspaceID + "/" + ch.ID + "/" + row.ID
	if _, err := s.files.Put(ctx, row.StorageKey, bytes.NewReader(up.Data)); err != nil {
		return nil, fmt.Errorf("messaging: keep upload: %w", err)
	}
	row.State = store.MediaStored
	return row, nil
}

// templateText is what a sent template reads as, stored as the message's
// text so that the cabinet, the CRM and its notices show what the customer
// got: the synced template's body with the parameters in place. A template
// not synced yet keeps a preview that names it and its parameters.
func (s *Service) templateText(ctx context.Context, channelID string, t *channel.Template) (string, error) {
	synced, err := s.store.Template(ctx, channelID, t.Name, t.Language)
	if errors.Is(err, store.ErrNotFound) {
		return templatePreview(t), nil
	}
	if err != nil {
		return "", err
	}
	body := channel.TemplateBody(json.RawMessage(synced.Components))
	if body == "" {
		return templatePreview(t), nil
	}
	return channel.FillTemplate(body, t.Params), nil
}

func templatePreview(t *channel.Template) string {
	s := "[template " + t.Name + "/" + t.Language + "]"
	if len(t.Params) > 0 {
		s += " " + strings.Join(t.Params, ", ")
	}
	return s
}

// CheckKept refuses a file kept for later sends (a quick reply's) that a
// messenger of the gateway would refuse when it is sent, as a send naming
// it would send it (its kind guessed from its type and name). It is the
// same check a send makes, run when the file is saved, so the refusal
// comes while the file is still at hand rather than mid-conversation.
func (s *Service) CheckKept(up *Upload) error {
	kind := guessType(&SendRequest{Media: &SendMedia{Filename: up.Filename}, Upload: up})
	for _, typ := range s.registry.Types() {
		if err := s.checkUpload(typ, kind, up); err != nil {
			return err
		}
	}
	return nil
}
