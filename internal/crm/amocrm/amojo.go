package amocrm

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/crm/crmhttp"
)

// AmojoDateFormat is the Date header amojo signs: RFC 2822 with a numeric
// zone, e.g. "Thu, 01 Jan 2026 12:00:05 +0000".
const AmojoDateFormat = "Mon, 02 Jan 2006 15:04:05 -0700"

// AmojoSignatureWindow is how far a signed Date may be from now.
const AmojoSignatureWindow = 15 * time.Minute

const amojoContentType = "application/json"

// ContentMD5 is amojo's Content-MD5: lowercase hex MD5 of the exact body
// (of the empty string for a GET).
func ContentMD5(body []byte) string {
	s := md5.Sum(body)
	return hex.EncodeToString(s[:])
}

// AmojoSignature is X-Signature of a request to amojo: lowercase hex
// HMAC-SHA1 with the channel secret of METHOD, Content-MD5, Content-Type,
// Date and path (no scheme, host or query) joined by "\n".
func AmojoSignature(secret, method, contentMD5, contentType, date, path string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(strings.ToUpper(method) + "\n" + contentMD5 + "\n" + contentType + "\n" + date + "\n" + path))
	return hex.EncodeToString(m.Sum(nil))
}

// SignAmojoRequest sets Date, Content-Type, Content-MD5 and X-Signature on
// req, whose body must be exactly body.
func SignAmojoRequest(req *http.Request, body []byte, secret string, now time.Time) {
	date := now.UTC().Format(AmojoDateFormat)
	md := ContentMD5(body)
	req.Header.Set("Date", date)
	req.Header.Set("Content-Type", amojoContentType)
	req.Header.Set("Content-MD5", md)
	req.Header.Set("X-Signature", AmojoSignature(secret, req.Method, md, amojoContentType, date, req.URL.Path))
}

// VerifyAmojoRequest checks a request signed like SignAmojoRequest (what
// amojo itself checks); body is the raw body read from req.
func VerifyAmojoRequest(req *http.Request, body []byte, secret string, now time.Time) error {
	date := req.Header.Get("Date")
	t, err := time.Parse(AmojoDateFormat, date)
	if err != nil {
		return fmt.Errorf("%w: amojo: bad Date", ErrBadSignature)
	}
	if d := now.Sub(t); d > AmojoSignatureWindow || d < -AmojoSignatureWindow {
		return fmt.Errorf("%w: amojo: Date outside the signature window", ErrBadSignature)
	}
	md := req.Header.Get("Content-MD5")
	if md != ContentMD5(body) {
		return fmt.Errorf("%w: amojo: Content-MD5 does not match the body", ErrBadSignature)
	}
	want := AmojoSignature(secret, req.Method, md, req.Header.Get("Content-Type"), date, req.URL.Path)
	if !hmac.Equal([]byte(strings.ToLower(req.Header.Get("X-Signature"))), []byte(want)) {
		return fmt.Errorf("%w: amojo: wrong X-Signature", ErrBadSignature)
	}
	return nil
}

// AmojoHookSignature is X-Signature of amojo's outgoing hook: lowercase hex
// HMAC-SHA1 of the raw body with the channel secret.
func AmojoHookSignature(secret string, body []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyAmojoHook checks an outgoing hook's X-Signature.
func VerifyAmojoHook(secret string, body []byte, signature string) error {
	if secret == "" {
		return errors.New("amocrm: amojo hook: no channel secret configured")
	}
	if !hmac.Equal([]byte(strings.ToLower(strings.TrimSpace(signature))), []byte(AmojoHookSignature(secret, body))) {
		return fmt.Errorf("%w: amojo hook", ErrBadSignature)
	}
	return nil
}

// AmojoHook is the v2 outgoing-message hook (a manager wrote in amoCRM).
type AmojoHook struct {
	AccountID string `json:"account_id"` // the account's amojo id
	Time      int64  `json:"time"`
	Message   struct {
		Receiver struct {
			ID       string `json:"id"`
			Phone    string `json:"phone"`
			Email    string `json:"email"`
			ClientID string `json:"client_id"`
		} `json:"receiver"`
		Sender struct {
			ID string `json:"id"` // the manager's amojo id
		} `json:"sender"`
		Conversation struct {
			ID       string `json:"id"`
			ClientID string `json:"client_id"` // our conversation_id
		} `json:"conversation"`
		Source struct {
			ExternalID string `json:"external_id"`
		} `json:"source"`
		Timestamp     int64 `json:"timestamp"`
		MsecTimestamp int64 `json:"msec_timestamp"`
		Message       struct {
			ID           string `json:"id"` // amojo's id: delivery status goes to it
			Type         string `json:"type"`
			Text         string `json:"text"`
			Tag          string `json:"tag"`
			Media        string `json:"media"`
			Thumbnail    string `json:"thumbnail"`
			FileName     string `json:"file_name"`
			FileSize     int64  `json:"file_size"`
			MediaGroupID string `json:"media_group_id"`
		} `json:"message"`
	} `json:"message"`
}

// ParseAmojoHook checks the signature and decodes the hook.
func ParseAmojoHook(secret string, body []byte, signature string) (*AmojoHook, error) {
	if err := VerifyAmojoHook(secret, body, signature); err != nil {
		return nil, err
	}
	var h AmojoHook
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("amocrm: amojo hook: %w", err)
	}
	if h.Message.Message.ID == "" {
		return nil, errors.New("amocrm: amojo hook: no message id")
	}
	return &h, nil
}

// AmojoClient calls the Chats API with the channel's credentials.
type AmojoClient struct {
	ChannelID string
	Secret    string
	// BaseURL defaults to https://amojo.amocrm.ru (see AmojoBase).
	BaseURL string
	HTTP    *http.Client
	// Now signs requests; nil is time.Now.
	Now func() time.Time
}

// AmojoConnection is the answer to connect.
type AmojoConnection struct {
	AccountID            string `json:"account_id"`
	ScopeID              string `json:"scope_id"`
	Title                string `json:"title"`
	HookAPIVersion       string `json:"hook_api_version"`
	IsTimeWindowDisabled bool   `json:"is_time_window_disabled"`
}

func (c *AmojoClient) do(ctx context.Context, method, path string, in, out any) error {
	if c.ChannelID == "" || c.Secret == "" {
		return errors.New("amocrm: amojo: channel not configured")
	}
	base := c.BaseURL
	if base == "" {
		base = "https://amojo.amocrm.ru"
	}
	var body []byte
	if in != nil {
		b, err := encodeJSON(in)
		if err != nil {
			return err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	SignAmojoRequest(req, body, c.Secret, now)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: defaultHTTPTimeout}
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		return fmt.Errorf("amocrm: amojo %s %s: %w", method, path, crmhttp.StripURL(err))
	}
	defer resp.Body.Close()
	data, rerr := crmhttp.ReadCapped(resp.Body, 1<<20)
	op := "amojo " + method + " " + path
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := parseError(op, resp.StatusCode, resp.Header, data)
		var ae struct {
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &ae) == nil && e.Detail == "" {
			e.Detail = ae.Description
		}
		return e
	}
	if rerr != nil {
		return fmt.Errorf("amocrm: %s: %w", op, rerr)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("amocrm: %s: decode: %w", op, err)
		}
	}
	return nil
}

// Connect connects the channel to an account (by its amojo id); redo it
// after every install. The scope id it returns addresses the account.
func (c *AmojoClient) Connect(ctx context.Context, amojoAccountID, title string) (*AmojoConnection, error) {
	var out AmojoConnection
	err := c.do(ctx, http.MethodPost, "/v2/origin/custom/"+url.PathEscape(c.ChannelID)+"/connect", struct {
		AccountID            string `json:"account_id"`
		Title                string `json:"title"`
		HookAPIVersion       string `json:"hook_api_version"`
		IsTimeWindowDisabled bool   `json:"is_time_window_disabled"`
	}{amojoAccountID, title, "v2", false}, &out)
	if err != nil {
		return nil, err
	}
	if out.ScopeID == "" {
		return nil, errors.New("amocrm: amojo connect: no scope_id in the answer")
	}
	return &out, nil
}

// Disconnect disconnects the channel from an account.
func (c *AmojoClient) Disconnect(ctx context.Context, amojoAccountID string) error {
	return c.do(ctx, http.MethodDelete, "/v2/origin/custom/"+url.PathEscape(c.ChannelID)+"/disconnect",
		map[string]string{"account_id": amojoAccountID}, nil)
}

// AmojoSender is the customer (or, with RefID, the user) a message is from.
type AmojoSender struct {
	ID          string        `json:"id"`
	RefID       string        `json:"ref_id,omitempty"`
	Name        string        `json:"name,omitempty"`
	Avatar      string        `json:"avatar,omitempty"`
	Profile     *AmojoProfile `json:"profile,omitempty"`
	ProfileLink string        `json:"profile_link,omitempty"`
}

// AmojoProfile carries the customer's phone (it becomes the contact's
// phone on the incoming lead) and e-mail.
type AmojoProfile struct {
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

// AmojoContent is the message itself; Text is always sent (empty for
// media), as in amoCRM's examples.
type AmojoContent struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Media    string `json:"media,omitempty"`
	FileName string `json:"file_name,omitempty"`
	FileSize int64  `json:"file_size,omitempty"`
}

// AmojoMessage is the payload of a new_message event.
type AmojoMessage struct {
	Timestamp      int64        `json:"timestamp"`
	MsecTimestamp  int64        `json:"msec_timestamp"`
	MsgID          string       `json:"msgid"`
	ConversationID string       `json:"conversation_id"`
	Sender         AmojoSender  `json:"sender"`
	Receiver       *AmojoSender `json:"receiver,omitempty"`
	Message        AmojoContent `json:"message"`
	Silent         bool         `json:"silent"`
}

// AmojoSent is amojo's answer to new_message.
type AmojoSent struct {
	ConversationID string  `json:"conversation_id"`
	SenderID       string  `json:"sender_id"`
	ReceiverID     *string `json:"receiver_id"`
	MsgID          string  `json:"msgid"`  // amojo's id
	RefID          string  `json:"ref_id"` // ours
}

// NewMessageBody is the exact JSON of a new_message request.
func NewMessageBody(m AmojoMessage) ([]byte, error) {
	return encodeJSON(struct {
		EventType string       `json:"event_type"`
		Payload   AmojoMessage `json:"payload"`
	}{"new_message", m})
}

// SendMessage relays a customer's message into the account's chat.
func (c *AmojoClient) SendMessage(ctx context.Context, scopeID string, m AmojoMessage) (*AmojoSent, error) {
	body, err := NewMessageBody(m)
	if err != nil {
		return nil, err
	}
	var out struct {
		NewMessage AmojoSent `json:"new_message"`
	}
	if err := c.do(ctx, http.MethodPost, "/v2/origin/custom/"+url.PathEscape(scopeID), json.RawMessage(body), &out); err != nil {
		return nil, err
	}
	return &out.NewMessage, nil
}

// AmojoHistoryItem is one message of a chat's history.
type AmojoHistoryItem struct {
	Timestamp int64 `json:"timestamp"`
	Message   struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Text  string `json:"text"`
		Media string `json:"media"`
	} `json:"message"`
}

// History reads the messages of our conversation's chat (a signed GET).
// A conversation amojo does not know has no history: nil, not an error.
func (c *AmojoClient) History(ctx context.Context, scopeID, conversationID string) ([]AmojoHistoryItem, error) {
	var out struct {
		Messages []AmojoHistoryItem `json:"messages"`
	}
	err := c.do(ctx, http.MethodGet, "/v2/origin/custom/"+url.PathEscape(scopeID)+"/chats/"+url.PathEscape(conversationID)+"/history", nil, &out)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return out.Messages, err
}

// Delivery status codes (contract §6.6).
const (
	DeliveryDelivered = 1
	DeliveryRead      = 2
	DeliveryError     = -1
)

// AmojoDeliveryStatus reports what became of a manager's message;
// ErrorCode (901–905) and Error go with DeliveryError.
type AmojoDeliveryStatus struct {
	StatusCode int    `json:"status_code"`
	ErrorCode  int    `json:"error_code,omitempty"`
	Error      string `json:"error,omitempty"`
}

// DeliveryStatus reports the status of the manager's message msgID
// (amojo's id from the hook).
func (c *AmojoClient) DeliveryStatus(ctx context.Context, scopeID, msgID string, st AmojoDeliveryStatus) error {
	return c.do(ctx, http.MethodPost, "/v2/origin/custom/"+url.PathEscape(scopeID)+"/"+url.PathEscape(msgID)+"/delivery_status", st, nil)
}

// AmojoChat is amojo's answer to creating a chat: ID is the chat's id in
// amojo (what POST /api/v4/contacts/chats links), User the customer as
// amojo knows them.
type AmojoChat struct {
	ID   string `json:"id"`
	User struct {
		ID       string `json:"id"`
		ClientID string `json:"client_id"`
	} `json:"user"`
}

// CreateChat creates the chat of conversationID before its first message,
// with the customer as user (id, name, avatar, profile, profile_link: the
// shape of a message's sender); a conversation that has a chat already
// gets its id back. Linked to a contact before the first message, the chat
// makes amoCRM create no incoming lead of its own.
func (c *AmojoClient) CreateChat(ctx context.Context, scopeID, conversationID string, user AmojoSender) (*AmojoChat, error) {
	var out AmojoChat
	err := c.do(ctx, http.MethodPost, "/v2/origin/custom/"+url.PathEscape(scopeID)+"/chats", struct {
		ConversationID string      `json:"conversation_id"`
		User           AmojoSender `json:"user"`
	}{conversationID, user}, &out)
	if err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, errors.New("amocrm: amojo create chat: no id in the answer")
	}
	return &out, nil
}
