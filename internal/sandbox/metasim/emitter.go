package metasim

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Sign returns the X-Hub-Signature-256 value for body under the configured
// app secret.
func (s *Server) Sign(body []byte) string { return SignBody(s.opts.AppSecret, body) }

// PostWebhook delivers payload verbatim (signed) to the gateway and returns
// its HTTP status. Use it for fixtures or hand-made batches. Customer
// messages in it open conversation windows just as the Send* helpers do, so
// a fixture posted here makes a later reply legal.
func (s *Server) PostWebhook(ctx context.Context, payload []byte) (int, error) {
	s.notePostedInbound(payload)
	return s.deliver(ctx, "raw", payload)
}

// notePostedInbound is best effort: payloads that are not Meta-shaped are
// still delivered, they just open no window.
func (s *Server) notePostedInbound(payload []byte) {
	var probe struct {
		Object string `json:"object"`
		Entry  []struct {
			Changes []struct {
				Value struct {
					Metadata struct {
						PhoneNumberID string `json:"phone_number_id"`
					} `json:"metadata"`
					Messages []struct {
						From string `json:"from"`
					} `json:"messages"`
				} `json:"value"`
			} `json:"changes"`
			Messaging []struct {
				Sender    igID `json:"sender"`
				Recipient igID `json:"recipient"`
				Message   *struct {
					IsEcho bool `json:"is_echo"`
				} `json:"message"`
				Reaction json.RawMessage `json:"reaction"`
				Postback json.RawMessage `json:"postback"`
			} `json:"messaging"`
		} `json:"entry"`
	}
	if json.Unmarshal(payload, &probe) != nil {
		return
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range probe.Entry {
		for _, c := range e.Changes {
			for _, m := range c.Value.Messages {
				if m.From != "" && c.Value.Metadata.PhoneNumberID != "" {
					s.waLastIn[pairKey{c.Value.Metadata.PhoneNumberID, m.From}] = now
				}
			}
		}
		// Instagram's window opens on a message, reaction or postback from
		// the customer; echoes are the business's own messages.
		for _, m := range e.Messaging {
			fromCustomer := (m.Message != nil && !m.Message.IsEcho) || m.Reaction != nil || m.Postback != nil
			if probe.Object == "instagram" && fromCustomer {
				s.igLastIn[pairKey{m.Recipient.ID, m.Sender.ID}] = now
			}
		}
	}
}

// VerifyWebhook performs Meta's subscription handshake against the webhook
// URL: GET ?hub.mode=subscribe&hub.challenge=<n>&hub.verify_token=<token>.
// It returns the gateway's status, and an error unless the gateway answered
// 200 with exactly the challenge as body.
func (s *Server) VerifyWebhook(ctx context.Context, verifyToken string) (int, error) {
	if s.opts.WebhookURL == "" {
		return 0, fmt.Errorf("metasim: verify webhook: no webhook URL configured")
	}
	u, err := url.Parse(s.opts.WebhookURL)
	if err != nil {
		return 0, fmt.Errorf("metasim: verify webhook: %w", err)
	}
	challenge := randomDigits(10)
	q := u.Query()
	q.Set("hub.mode", "subscribe")
	q.Set("hub.challenge", challenge)
	q.Set("hub.verify_token", verifyToken)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("metasim: verify webhook: %w", err)
	}
	req.Header.Set("User-Agent", "facebookplatform/1.0 (+http://developers.facebook.com)")
	resp, err := s.hook.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metasim: verify webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("metasim: verify webhook: read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, &WebhookStatusError{StatusCode: resp.StatusCode}
	}
	if string(body) != challenge {
		return resp.StatusCode, fmt.Errorf("metasim: verify webhook: body %q is not the challenge %q", truncateForError(body), challenge)
	}
	return resp.StatusCode, nil
}

func truncateForError(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

func (s *Server) deliver(ctx context.Context, kind string, payload []byte) (int, error) {
	status, err := s.hook.Post(ctx, payload)
	d := WebhookDelivery{Time: s.clock(), Kind: kind, Body: payload, Status: status}
	if err != nil {
		d.Err = err.Error()
		s.log.Warn("webhook failed", "kind", kind, "bytes", len(payload), "err", err)
	} else {
		s.log.Info("webhook posted", "kind", kind, "bytes", len(payload), "status", status)
	}
	s.mu.Lock()
	s.deliveries = appendCapped(s.deliveries, d, s.opts.MaxRecorded)
	s.mu.Unlock()
	return status, err
}

// deliverAck is deliver for helpers whose callers only care whether the
// gateway accepted the message.
func (s *Server) deliverAck(ctx context.Context, kind string, payload []byte) error {
	status, err := s.deliver(ctx, kind, payload)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return &WebhookStatusError{StatusCode: status}
	}
	return nil
}

func (s *Server) numberByID(phoneNumberID string) (*waNumber, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.numbers[phoneNumberID]
	if !ok {
		return nil, fmt.Errorf("metasim: unknown WhatsApp phone number id %q", phoneNumberID)
	}
	return n, nil
}

// noteWAInbound opens (or refreshes) the customer service window. It happens
// when the customer writes, whether or not the gateway acknowledges the
// webhook: Meta's window is about the user's action, not about delivery.
func (s *Server) noteWAInbound(phoneNumberID, waID string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waLastIn[pairKey{phoneNumberID, waID}] = at
}

// SendWhatsAppText simulates a customer writing text to a business number.
// A non-2xx answer from the gateway is returned as *WebhookStatusError.
func (s *Server) SendWhatsAppText(ctx context.Context, phoneNumberID, fromWaID, name, text string) (string, error) {
	return s.sendWhatsApp(ctx, phoneNumberID, WhatsAppInbound{From: fromWaID, Name: name, Text: text})
}

// SendWhatsAppReply simulates a customer quoting an earlier message.
func (s *Server) SendWhatsAppReply(ctx context.Context, phoneNumberID, fromWaID, name, quotedWAMID, text string) (string, error) {
	return s.sendWhatsApp(ctx, phoneNumberID, WhatsAppInbound{From: fromWaID, Name: name, Text: text, QuotedWAMID: quotedWAMID})
}

// SendWhatsAppImage simulates a customer sending a picture. The bytes are
// registered as media so the gateway can fetch them with GET /{media_id}.
func (s *Server) SendWhatsAppImage(ctx context.Context, phoneNumberID, fromWaID, name, mime string, data []byte, caption string) (wamid, mediaID string, err error) {
	n, err := s.numberByID(phoneNumberID)
	if err != nil {
		return "", "", err
	}
	m := s.storeMedia(n.id, mime, "", data)
	sum := sha256.Sum256(data)
	wamid, err = s.sendWhatsApp(ctx, phoneNumberID, WhatsAppInbound{
		From: fromWaID, Name: name,
		Image: &InboundMedia{ID: m.id, MimeType: mime, SHA256: base64.StdEncoding.EncodeToString(sum[:]), Caption: caption},
	})
	return wamid, m.id, err
}

func (s *Server) sendWhatsApp(ctx context.Context, phoneNumberID string, in WhatsAppInbound) (string, error) {
	n, err := s.numberByID(phoneNumberID)
	if err != nil {
		return "", err
	}
	in.WABAID, in.PhoneNumberID, in.DisplayPhone = n.wabaID, n.id, n.displayPhone
	in.Time = s.clock()
	payload, wamid, err := BuildWhatsAppWebhook(in)
	if err != nil {
		return "", err
	}
	s.noteWAInbound(n.id, in.From, in.Time)
	if err := s.deliverAck(ctx, "whatsapp.message", payload); err != nil {
		return wamid, fmt.Errorf("deliver whatsapp message %s: %w", wamid, err)
	}
	return wamid, nil
}

// SendInstagramText simulates a customer DM to an Instagram account.
func (s *Server) SendInstagramText(ctx context.Context, igUserID, igsid, text string) (string, error) {
	s.mu.Lock()
	_, ok := s.igAccounts[igUserID]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("metasim: unknown Instagram account %q", igUserID)
	}
	now := s.clock()
	payload, mid, err := BuildInstagramWebhook(InstagramInbound{IGUserID: igUserID, IGSID: igsid, Time: now, Text: text})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.igLastIn[pairKey{igUserID, igsid}] = now
	s.mu.Unlock()
	if err := s.deliverAck(ctx, "instagram.message", payload); err != nil {
		return mid, fmt.Errorf("deliver instagram message %s: %w", mid, err)
	}
	return mid, nil
}

// --- background deliveries ---

// background runs fn on the server's lifetime context, so a finished HTTP
// request does not cancel the statuses it caused and Close can stop them.
func (s *Server) background(fn func(ctx context.Context)) {
	// Add under the lock that Close takes first, so no Add can race with
	// Close's Wait.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

func (s *Server) sleep(ctx context.Context) bool {
	if s.opts.StatusDelay <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(s.opts.StatusDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// outbound is what the status emitter needs to know about an accepted send.
type outbound struct {
	num            *waNumber
	wamid          string
	recipient      string
	category       string // pricing category: service, utility, marketing, ...
	reaction       bool   // reactions only ever get "sent"
	failed         bool   // 131047: only a failed status
	bizOpaque      string
	conversationID string // shared by this message's statuses
}

func (s *Server) scheduleWAStatuses(o outbound) {
	var seq []string
	switch {
	case o.failed:
		seq = []string{"failed"}
	case !s.opts.AutoStatuses:
		return
	case o.reaction:
		seq = []string{"sent"}
	case s.opts.ReadWithoutDelivered:
		seq = []string{"sent", "read"}
	case s.opts.OutOfOrderStatuses:
		seq = []string{"delivered", "sent", "read"}
	default:
		seq = []string{"sent", "delivered", "read"}
	}
	o.conversationID = randomHex(16)
	s.background(func(ctx context.Context) {
		if s.opts.BatchStatuses {
			if !s.sleep(ctx) {
				return
			}
			statuses := make([]waStatus, len(seq))
			for i, st := range seq {
				statuses[i] = s.waStatus(o, st)
			}
			s.postWAStatuses(ctx, o, "whatsapp.status.batch", statuses)
			return
		}
		for _, st := range seq {
			if !s.sleep(ctx) {
				return
			}
			s.postWAStatuses(ctx, o, "whatsapp.status."+st, []waStatus{s.waStatus(o, st)})
		}
	})
}

func (s *Server) postWAStatuses(ctx context.Context, o outbound, kind string, statuses []waStatus) {
	v := waValue{
		MessagingProduct: "whatsapp",
		Metadata:         waMetadata{DisplayPhoneNumber: o.num.displayPhone, PhoneNumberID: o.num.id},
		Statuses:         statuses,
	}
	payload, err := metaJSON(waEnvelope(o.num.wabaID, v))
	if err != nil {
		s.recordInternal(kind, err)
		return
	}
	copies := 1
	if s.opts.DuplicateStatuses {
		copies = 2
	}
	for range copies {
		// Errors are recorded by deliver; a simulator must keep going.
		s.deliver(ctx, kind, payload)
	}
}

func (s *Server) recordInternal(kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = appendCapped(s.deliveries, WebhookDelivery{Time: s.clock(), Kind: kind, Err: err.Error()}, s.opts.MaxRecorded)
}

func (s *Server) waStatus(o outbound, status string) waStatus {
	now := s.clock()
	st := waStatus{ID: o.wamid, Status: status, Timestamp: unixString(now), RecipientID: o.recipient, BizOpaqueCallbackData: o.bizOpaque}
	switch status {
	case "failed":
		e := waStatusError{
			Code:    131047,
			Title:   "Re-engagement message",
			Message: "Re-engagement message",
			Href:    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
		}
		e.ErrorData.Details = details131047
		st.Errors = []waStatusError{e}
	case "sent", "delivered":
		conv := &waConversation{ID: o.conversationID}
		conv.Origin.Type = o.category
		if status == "sent" {
			conv.ExpirationTimestamp = unixString(now.Add(24 * time.Hour))
		}
		st.Conversation = conv
		pr := &waPricing{Billable: true, PricingModel: "PMP", Category: o.category, Type: "regular"}
		if o.category == "service" {
			// Service replies inside the window are free under per-message pricing.
			pr.Billable, pr.Type = false, "free_customer_service"
		}
		st.Pricing = pr
	}
	return st
}

// scheduleIGEcho posts the is_echo copy of a business message and then the
// customer's read receipt, as Instagram does for every send.
func (s *Server) scheduleIGEcho(acc *igAccount, igsid, mid string, msg igMessage) {
	if !s.opts.AutoStatuses {
		return
	}
	s.background(func(ctx context.Context) {
		if !s.sleep(ctx) {
			return
		}
		now := s.clock()
		msg.MID, msg.IsEcho = mid, true
		echo := igMessaging{Sender: igID{acc.id}, Recipient: igID{igsid}, Timestamp: now.UnixMilli(), Message: &msg}
		if err := s.postIG(ctx, "instagram.echo", acc.id, echo); err != nil {
			return
		}
		if !s.sleep(ctx) {
			return
		}
		now = s.clock()
		read := igMessaging{Sender: igID{igsid}, Recipient: igID{acc.id}, Timestamp: now.UnixMilli(), Read: &igRead{MID: mid}}
		s.postIG(ctx, "instagram.read", acc.id, read)
	})
}

func (s *Server) postIG(ctx context.Context, kind, igUserID string, ev igMessaging) error {
	payload, err := metaJSON(igEnvelope(igUserID, s.clock(), ev))
	if err != nil {
		s.recordInternal(kind, err)
		return err
	}
	_, err = s.deliver(ctx, kind, payload)
	if errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
