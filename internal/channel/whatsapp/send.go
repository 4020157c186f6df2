package whatsapp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

// Client sends and downloads through the WhatsApp Cloud API. It holds no
// credentials; every call is made with the channel's own token.
type Client struct {
	g *graph.Client
}

var (
	_ channel.Sender       = (*Client)(nil)
	_ channel.MediaFetcher = (*Client)(nil)
)

// NewClient wraps a Graph client pointed at graph.facebook.com (or a
// simulator).
func NewClient(g *graph.Client) *Client { return &Client{g: g} }

// NewProvider describes WhatsApp to the channel registry.
func NewProvider(c *Client) *channel.Provider {
	return &channel.Provider{
		Type:          channel.WhatsApp,
		WebhookObject: Object,
		Parser:        Parser{},
		Sender:        c,
		Fetcher:       c,
		Verifier:      c,
		Media:         MediaRules,
		Templates:     c,
		Reads:         c,
	}
}

type sendRequest struct {
	MessagingProduct string       `json:"messaging_product"`
	RecipientType    string       `json:"recipient_type"`
	To               string       `json:"to,omitempty"`
	Recipient        string       `json:"recipient,omitempty"`
	Context          *sendContext `json:"context,omitempty"`
	Type             string       `json:"type"`
	Text             *sendText    `json:"text,omitempty"`
	Image            *sendMedia   `json:"image,omitempty"`
	Video            *sendMedia   `json:"video,omitempty"`
	Audio            *sendMedia   `json:"audio,omitempty"`
	Document         *sendMedia   `json:"document,omitempty"`
	Sticker          *sendMedia   `json:"sticker,omitempty"`
	Template         *sendTmpl    `json:"template,omitempty"`
	Reaction         *sendReact   `json:"reaction,omitempty"`
}

type sendContext struct {
	MessageID string `json:"message_id"`
}

type sendText struct {
	// Always false: a link preview fetches the customer-supplied URL from
	// Meta's side and changes how the message looks in ways agents did not
	// choose.
	PreviewURL bool   `json:"preview_url"`
	Body       string `json:"body"`
}

type sendMedia struct {
	ID       string `json:"id,omitempty"`
	Link     string `json:"link,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

type sendTmpl struct {
	Name     string `json:"name"`
	Language struct {
		Policy string `json:"policy"`
		Code   string `json:"code"`
	} `json:"language"`
	Components []tmplComponent `json:"components,omitempty"`
}

type tmplComponent struct {
	Type       string      `json:"type"`
	Parameters []tmplParam `json:"parameters"`
}

type tmplParam struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type sendReact struct {
	MessageID string `json:"message_id"`
	Emoji     string `json:"emoji"` // empty removes the reaction, so never omitted
}

type sendResponse struct {
	Contacts []struct {
		WaID   graph.FlexString `json:"wa_id"`
		UserID graph.FlexString `json:"user_id"`
	} `json:"contacts"`
	Messages []struct {
		ID graph.FlexString `json:"id"`
	} `json:"messages"`
}

// Send posts one message to /{phone-number-id}/messages. A message this
// messenger cannot carry is refused with an OutcomeFailed SendError before
// any request is made.
func (c *Client) Send(ctx context.Context, creds channel.Credentials, msg *channel.Outbound) (*channel.SendResult, error) {
	req, err := buildRequest(msg)
	if err != nil {
		return nil, err
	}
	if creds.AccountID == "" {
		return nil, graph.Misconfigured("whatsapp: send: channel has no phone number id")
	}
	var resp sendResponse
	if err := c.g.PostJSON(ctx, creds.AccessToken, messagesPath(creds), req, &resp); err != nil {
		return nil, fmt.Errorf("whatsapp: send: %w", err)
	}
	if len(resp.Messages) == 0 || resp.Messages[0].ID == "" {
		return nil, errors.New("whatsapp: send: accepted without a message id")
	}
	res := &channel.SendResult{ExternalID: string(resp.Messages[0].ID)}
	if len(resp.Contacts) > 0 {
		res.RecipientID = string(cmp.Or(resp.Contacts[0].WaID, resp.Contacts[0].UserID))
	}
	return res, nil
}

func buildRequest(msg *channel.Outbound) (*sendRequest, error) {
	if msg == nil {
		return nil, graph.Invalid("whatsapp: nil message")
	}
	req := &sendRequest{MessagingProduct: "whatsapp", RecipientType: "individual"}
	if phone, ok := phoneDigits(msg.To); ok {
		req.To = phone
	} else if msg.To != "" {
		// Not a number: a business-scoped user id of a customer who hides
		// their number, addressed with "recipient" instead of "to".
		req.Recipient = msg.To
	} else {
		return nil, graph.Invalid("whatsapp: no recipient")
	}
	if msg.QuotedExternalID != "" && msg.Type != channel.MsgReaction {
		req.Context = &sendContext{MessageID: msg.QuotedExternalID}
	}
	switch msg.Type {
	case channel.MsgText:
		if msg.Text == "" {
			return nil, graph.Invalid("whatsapp: empty text")
		}
		req.Type = "text"
		req.Text = &sendText{Body: msg.Text}
	case channel.MsgImage, channel.MsgVideo, channel.MsgDocument, channel.MsgAudio, channel.MsgVoice, channel.MsgSticker:
		m, err := mediaObject(msg)
		if err != nil {
			return nil, err
		}
		switch msg.Type {
		case channel.MsgImage:
			req.Type, req.Image = "image", m
		case channel.MsgVideo:
			req.Type, req.Video = "video", m
		case channel.MsgDocument:
			req.Type, req.Document = "document", m
		case channel.MsgSticker:
			req.Type, req.Sticker = "sticker", m
		default:
			// Cloud API has no voice type: an ogg/opus audio shows as a
			// voice note.
			req.Type, req.Audio = "audio", m
		}
	case channel.MsgTemplate:
		t := msg.Template
		if t == nil || t.Name == "" || t.Language == "" {
			return nil, graph.Invalid("whatsapp: template needs a name and a language")
		}
		req.Type = "template"
		req.Template = &sendTmpl{Name: t.Name}
		req.Template.Language.Policy = "deterministic"
		req.Template.Language.Code = t.Language
		if len(t.Params) > 0 {
			body := tmplComponent{Type: "body"}
			for _, p := range t.Params {
				body.Parameters = append(body.Parameters, tmplParam{Type: "text", Text: p})
			}
			req.Template.Components = []tmplComponent{body}
		}
	case channel.MsgReaction:
		if msg.Reaction == nil || msg.Reaction.TargetExternalID == "" {
			return nil, graph.Invalid("whatsapp: reaction needs a target message")
		}
		req.Type = "reaction"
		req.Reaction = &sendReact{MessageID: msg.Reaction.TargetExternalID, Emoji: msg.Reaction.Emoji}
	default:
		return nil, graph.Invalid(fmt.Sprintf("whatsapp: cannot send a %q message", msg.Type))
	}
	return req, nil
}

func mediaObject(msg *channel.Outbound) (*sendMedia, error) {
	m := msg.Media
	if m == nil || (m.ProviderID == "" && m.URL == "") {
		return nil, graph.Invalid("whatsapp: media needs an uploaded id or a link")
	}
	out := &sendMedia{ID: m.ProviderID}
	if out.ID == "" {
		out.Link = m.URL
	}
	// Meta rejects a caption on audio and stickers, and a filename on
	// anything but a document.
	switch msg.Type {
	case channel.MsgImage, channel.MsgVideo, channel.MsgDocument:
		out.Caption = m.Caption
		if out.Caption == "" {
			out.Caption = msg.Text
		}
	}
	if msg.Type == channel.MsgDocument {
		out.Filename = m.Filename
	}
	return out, nil
}

// phoneDigits strips the formatting people type around a number
// ("+7 916 123-45-67"); ok is false for anything that is not a number.
func phoneDigits(to string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(to) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' || r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", false
		}
	}
	return b.String(), b.Len() > 0
}

// MarkRead marks an inbound message (and all before it) as read.
func (c *Client) MarkRead(ctx context.Context, creds channel.Credentials, wamid string) error {
	return c.markRead(ctx, creds, wamid, false)
}

// MarkReadTyping marks a message read and shows "typing…" to the customer
// until the reply is sent or 25 seconds pass.
func (c *Client) MarkReadTyping(ctx context.Context, creds channel.Credentials, wamid string) error {
	return c.markRead(ctx, creds, wamid, true)
}

type markReadRequest struct {
	MessagingProduct string `json:"messaging_product"`
	Status           string `json:"status"`
	MessageID        string `json:"message_id"`
	TypingIndicator  *struct {
		Type string `json:"type"`
	} `json:"typing_indicator,omitempty"`
}

func (c *Client) markRead(ctx context.Context, creds channel.Credentials, wamid string, typing bool) error {
	if creds.AccountID == "" {
		return graph.Misconfigured("whatsapp: mark read: channel has no phone number id")
	}
	if wamid == "" {
		return graph.Invalid("whatsapp: mark read: no message id")
	}
	req := markReadRequest{MessagingProduct: "whatsapp", Status: "read", MessageID: wamid}
	if typing {
		req.TypingIndicator = &struct {
			Type string `json:"type"`
		}{Type: "text"}
	}
	if err := c.g.PostJSON(ctx, creds.AccessToken, messagesPath(creds), req, nil); err != nil {
		return fmt.Errorf("whatsapp: mark read: %w", err)
	}
	return nil
}

func messagesPath(creds channel.Credentials) string {
	return url.PathEscape(creds.AccountID) + "/messages"
}
