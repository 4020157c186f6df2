package metasim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// SignatureHeader is the header Meta signs webhook deliveries with.
const SignatureHeader = "X-Hub-Signature-256"

// SignBody returns the X-Hub-Signature-256 value for body:
// "sha256=" + lowercase hex HMAC-SHA256 keyed with the app secret.
func SignBody(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookClient posts signed webhook deliveries, the way Meta's delivery
// service does. It is independent of Server so that load generators can use
// it without running a simulator.
type WebhookClient struct {
	URL        string
	AppSecret  string
	HTTPClient *http.Client // nil means http.DefaultClient
}

// Post delivers body exactly as given and returns the receiver's HTTP status.
// A non-2xx status is not an error: Meta treats it as "retry later" and
// callers usually want to assert on it.
func (c *WebhookClient) Post(ctx context.Context, body []byte) (int, error) {
	if c.URL == "" {
		return 0, fmt.Errorf("metasim: post webhook: no webhook URL configured")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("metasim: post webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	req.Header.Set(SignatureHeader, SignBody(c.AppSecret, body))
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metasim: post webhook: %w", err) // *url.Error names the URL
	}
	defer resp.Body.Close()
	// Drain so the connection can be reused; the body itself is ignored by Meta.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// WebhookStatusError reports that the receiver answered a delivery with a
// non-2xx status.
type WebhookStatusError struct {
	StatusCode int
}

func (e *WebhookStatusError) Error() string {
	return fmt.Sprintf("metasim: webhook receiver answered HTTP %d", e.StatusCode)
}

// metaJSON marshals v the way Meta's delivery service serialises payloads:
// compact, non-ASCII escaped as \uXXXX and '/' escaped as "\/". Receivers
// that re-serialise parsed JSON before verifying the signature get a
// different hash, which is exactly the bug this is meant to surface.
func metaJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(raw)+len(raw)/8)
	// Every non-ASCII byte and every '/' in encoding/json output sits inside
	// a string literal, so escaping them byte-wise keeps the JSON valid.
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '/':
			out = append(out, '\\', '/')
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			i += size
			if r >= 0x10000 {
				r -= 0x10000
				out = appendU(out, 0xD800+(r>>10))
				out = appendU(out, 0xDC00+(r&0x3FF))
			} else {
				out = appendU(out, r)
			}
		}
	}
	return out, nil
}

func appendU(b []byte, r rune) []byte {
	const hexdigits = "0123456789abcdef"
	return append(b, '\\', 'u', hexdigits[r>>12&0xF], hexdigits[r>>8&0xF], hexdigits[r>>4&0xF], hexdigits[r&0xF])
}

func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// --- WhatsApp webhook payloads ---

type waWebhook struct {
	Object string    `json:"object"`
	Entry  []waEntry `json:"entry"`
}

type waEntry struct {
	ID      string     `json:"id"`
	Changes []waChange `json:"changes"`
}

type waChange struct {
	Value waValue `json:"value"`
	Field string  `json:"field"`
}

type waValue struct {
	MessagingProduct string        `json:"messaging_product"`
	Metadata         waMetadata    `json:"metadata"`
	Contacts         []waContact   `json:"contacts,omitempty"`
	Messages         []waInMessage `json:"messages,omitempty"`
	Statuses         []waStatus    `json:"statuses,omitempty"`
}

type waMetadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

type waContact struct {
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	WaID string `json:"wa_id"`
}

type waInMessage struct {
	From      string       `json:"from"`
	ID        string       `json:"id"`
	Timestamp string       `json:"timestamp"`
	Type      string       `json:"type"`
	Context   *waInContext `json:"context,omitempty"`
	Text      *waInText    `json:"text,omitempty"`
	Image     *waInMedia   `json:"image,omitempty"`
}

type waInContext struct {
	From string `json:"from"`
	ID   string `json:"id"`
}

type waInText struct {
	Body string `json:"body"`
}

type waInMedia struct {
	Caption  string `json:"caption,omitempty"`
	MimeType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	ID       string `json:"id"`
}

type waStatus struct {
	ID                    string          `json:"id"`
	Status                string          `json:"status"`
	Timestamp             string          `json:"timestamp"`
	RecipientID           string          `json:"recipient_id"`
	Conversation          *waConversation `json:"conversation,omitempty"`
	Pricing               *waPricing      `json:"pricing,omitempty"`
	BizOpaqueCallbackData string          `json:"biz_opaque_callback_data,omitempty"`
	Errors                []waStatusError `json:"errors,omitempty"`
}

type waConversation struct {
	ID                  string `json:"id"`
	ExpirationTimestamp string `json:"expiration_timestamp,omitempty"`
	Origin              struct {
		Type string `json:"type"`
	} `json:"origin"`
}

type waPricing struct {
	Billable     bool   `json:"billable"`
	PricingModel string `json:"pricing_model"`
	Category     string `json:"category"`
	Type         string `json:"type"`
}

type waStatusError struct {
	Code      int    `json:"code"`
	Title     string `json:"title"`
	Message   string `json:"message"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
	Href string `json:"href"`
}

// WhatsAppInbound describes one customer message to deliver as a WhatsApp
// webhook. Exactly one of Text or Image is used; Image wins if set.
type WhatsAppInbound struct {
	WABAID        string
	PhoneNumberID string
	DisplayPhone  string // business number; "+" and punctuation are stripped as Meta does
	From          string // customer wa_id (digits)
	Name          string // customer profile name
	WAMID         string // empty means a fresh one
	Time          time.Time
	Text          string
	QuotedWAMID   string // non-empty adds context{from: business number, id}
	Image         *InboundMedia
}

// InboundMedia is the media object of an inbound message: an id to fetch via
// GET /{media-id}, never a URL.
type InboundMedia struct {
	ID       string
	MimeType string
	SHA256   string // base64, as in Meta's webhook examples
	Caption  string
}

// BuildWhatsAppWebhook renders m as the exact bytes Meta would POST.
// It returns the payload and the wamid used.
func BuildWhatsAppWebhook(m WhatsAppInbound) (payload []byte, wamid string, err error) {
	wamid = m.WAMID
	if wamid == "" {
		wamid = NewWAMID(m.From)
	}
	msg := waInMessage{From: m.From, ID: wamid, Timestamp: unixString(m.Time)}
	if m.QuotedWAMID != "" {
		msg.Context = &waInContext{From: digitsOnly(m.DisplayPhone), ID: m.QuotedWAMID}
	}
	if m.Image != nil {
		msg.Type = "image"
		msg.Image = &waInMedia{Caption: m.Image.Caption, MimeType: m.Image.MimeType, SHA256: m.Image.SHA256, ID: m.Image.ID}
	} else {
		msg.Type = "text"
		msg.Text = &waInText{Body: m.Text}
	}
	var contact waContact
	contact.Profile.Name = m.Name
	contact.WaID = m.From
	v := waValue{
		MessagingProduct: "whatsapp",
		Metadata:         waMetadata{DisplayPhoneNumber: digitsOnly(m.DisplayPhone), PhoneNumberID: m.PhoneNumberID},
		Contacts:         []waContact{contact},
		Messages:         []waInMessage{msg},
	}
	payload, err = metaJSON(waEnvelope(m.WABAID, v))
	if err != nil {
		return nil, "", fmt.Errorf("metasim: build whatsapp webhook: %w", err)
	}
	return payload, wamid, nil
}

// WhatsAppStatus describes one status webhook (sent, delivered, read) for
// a message the business sent.
type WhatsAppStatus struct {
	WABAID        string
	PhoneNumberID string
	DisplayPhone  string // business number; "+" and punctuation are stripped as Meta does
	WAMID         string // the message's wamid
	Status        string // sent, delivered or read
	RecipientID   string // customer wa_id (digits)
	Time          time.Time
}

// BuildWhatsAppStatusWebhook renders s as the exact bytes Meta would POST.
func BuildWhatsAppStatusWebhook(s WhatsAppStatus) ([]byte, error) {
	v := waValue{
		MessagingProduct: "whatsapp",
		Metadata:         waMetadata{DisplayPhoneNumber: digitsOnly(s.DisplayPhone), PhoneNumberID: s.PhoneNumberID},
		Statuses:         []waStatus{{ID: s.WAMID, Status: s.Status, Timestamp: unixString(s.Time), RecipientID: s.RecipientID}},
	}
	payload, err := metaJSON(waEnvelope(s.WABAID, v))
	if err != nil {
		return nil, fmt.Errorf("metasim: build whatsapp status webhook: %w", err)
	}
	return payload, nil
}

func waEnvelope(wabaID string, values ...waValue) waWebhook {
	changes := make([]waChange, len(values))
	for i, v := range values {
		changes[i] = waChange{Value: v, Field: "messages"}
	}
	return waWebhook{Object: "whatsapp_business_account", Entry: []waEntry{{ID: wabaID, Changes: changes}}}
}

// --- Instagram webhook payloads ---

type igWebhook struct {
	Object string    `json:"object"`
	Entry  []igEntry `json:"entry"`
}

type igEntry struct {
	Time      int64         `json:"time"`
	ID        string        `json:"id"`
	Messaging []igMessaging `json:"messaging"`
}

type igMessaging struct {
	Sender    igID       `json:"sender"`
	Recipient igID       `json:"recipient"`
	Timestamp int64      `json:"timestamp"`
	Message   *igMessage `json:"message,omitempty"`
	Read      *igRead    `json:"read,omitempty"`
}

type igID struct {
	ID string `json:"id"`
}

type igMessage struct {
	MID         string         `json:"mid"`
	Text        string         `json:"text,omitempty"`
	Attachments []igAttachment `json:"attachments,omitempty"`
	IsEcho      bool           `json:"is_echo,omitempty"`
}

type igAttachment struct {
	Type    string `json:"type"`
	Payload struct {
		URL string `json:"url"`
	} `json:"payload"`
}

type igRead struct {
	MID string `json:"mid"`
}

// InstagramInbound describes one customer DM to deliver as an Instagram
// webhook.
type InstagramInbound struct {
	IGUserID string // business account (entry.id, recipient)
	IGSID    string // customer (sender)
	MID      string // empty means a fresh one
	Time     time.Time
	Text     string
}

// BuildInstagramWebhook renders m as the exact bytes Meta would POST.
func BuildInstagramWebhook(m InstagramInbound) (payload []byte, mid string, err error) {
	mid = m.MID
	if mid == "" {
		mid = newIGMID(m.IGUserID)
	}
	ev := igMessaging{
		Sender:    igID{m.IGSID},
		Recipient: igID{m.IGUserID},
		Timestamp: m.Time.UnixMilli(),
		Message:   &igMessage{MID: mid, Text: m.Text},
	}
	payload, err = metaJSON(igEnvelope(m.IGUserID, m.Time, ev))
	if err != nil {
		return nil, "", fmt.Errorf("metasim: build instagram webhook: %w", err)
	}
	return payload, mid, nil
}

func igEnvelope(igUserID string, now time.Time, events ...igMessaging) igWebhook {
	return igWebhook{Object: "instagram", Entry: []igEntry{{Time: now.UnixMilli(), ID: igUserID, Messaging: events}}}
}

func digitsOnly(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}
