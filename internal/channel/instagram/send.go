package instagram

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

// Client sends through the Instagram Messaging API. Point its Graph client
// at graph.facebook.com for accounts linked to a Facebook Page (Page token)
// or at graph.instagram.com for Instagram Login (IGAA… token); the request
// shapes are the same. It holds no credentials.
type Client struct {
	g *graph.Client
}

var (
	_ channel.Sender       = (*Client)(nil)
	_ channel.MediaFetcher = (*Client)(nil)
)

func NewClient(g *graph.Client) *Client { return &Client{g: g} }

// NewProvider describes Instagram to the channel registry.
func NewProvider(c *Client) *channel.Provider {
	return &channel.Provider{
		Type:          channel.Instagram,
		WebhookObject: Object,
		Parser:        Parser{},
		Sender:        c,
		Fetcher:       c,
		Profiles:      c,
		Verifier:      c,
	}
}

type sendRequest struct {
	Recipient struct {
		ID string `json:"id"`
	} `json:"recipient"`
	MessagingType string        `json:"messaging_type,omitempty"`
	Tag           string        `json:"tag,omitempty"`
	Message       *sendMessage  `json:"message,omitempty"`
	SenderAction  string        `json:"sender_action,omitempty"`
	Payload       *reactPayload `json:"payload,omitempty"`
}

type sendMessage struct {
	Text       string          `json:"text,omitempty"`
	Attachment *sendAttachment `json:"attachment,omitempty"`
	ReplyTo    *struct {
		Mid string `json:"mid"`
	} `json:"reply_to,omitempty"`
}

type sendAttachment struct {
	Type    string `json:"type"`
	Payload struct {
		URL string `json:"url"`
	} `json:"payload"`
}

type reactPayload struct {
	MessageID string `json:"message_id"`
	Reaction  string `json:"reaction,omitempty"`
}

// Send posts to /{ig-user-id}/messages (with no AccountID, /me/messages,
// which Graph resolves from the token). A message Instagram cannot carry
// (templates, uploaded media ids, stickers) is refused with an
// OutcomeFailed SendError before any request.
func (c *Client) Send(ctx context.Context, creds channel.Credentials, msg *channel.Outbound) (*channel.SendResult, error) {
	req, err := buildRequest(msg)
	if err != nil {
		return nil, err
	}
	var resp struct {
		RecipientID graph.FlexString `json:"recipient_id"`
		MessageID   graph.FlexString `json:"message_id"`
	}
	if err := c.g.PostJSON(ctx, creds.AccessToken, accountPath(creds)+"/messages", req, &resp); err != nil {
		return nil, fmt.Errorf("instagram: send: %w", err)
	}
	// A reaction is a sender action: Instagram answers it without a
	// message id, and it gets none.
	if resp.MessageID == "" && msg.Type != channel.MsgReaction {
		return nil, errors.New("instagram: send: accepted without a message id")
	}
	return &channel.SendResult{ExternalID: string(resp.MessageID), RecipientID: string(resp.RecipientID)}, nil
}

func buildRequest(msg *channel.Outbound) (*sendRequest, error) {
	if msg == nil {
		return nil, graph.Invalid("instagram: nil message")
	}
	if msg.To == "" {
		return nil, graph.Invalid("instagram: no recipient")
	}
	req := &sendRequest{}
	req.Recipient.ID = msg.To
	if msg.Type == channel.MsgReaction {
		r := msg.Reaction
		if r == nil || r.TargetExternalID == "" {
			return nil, graph.Invalid("instagram: reaction needs a target message")
		}
		req.Payload = &reactPayload{MessageID: r.TargetExternalID}
		if r.Emoji == "" {
			req.SenderAction = "unreact"
		} else {
			// Instagram takes a reaction name, not an emoji, and documents
			// only "love": every reaction goes out as a heart.
			req.SenderAction = "react"
			req.Payload.Reaction = "love"
		}
		return req, nil
	}

	req.MessagingType = "RESPONSE"
	if msg.HumanAgent {
		// Lets a person answer up to 7 days after the customer's last
		// message instead of 24 hours.
		req.MessagingType, req.Tag = "MESSAGE_TAG", "HUMAN_AGENT"
	}
	req.Message = &sendMessage{}
	switch msg.Type {
	case channel.MsgText:
		if msg.Text == "" {
			return nil, graph.Invalid("instagram: empty text")
		}
		req.Message.Text = msg.Text
	case channel.MsgImage, channel.MsgVideo, channel.MsgAudio, channel.MsgVoice, channel.MsgDocument:
		// Attachments carry no caption on Instagram; the caller sends any
		// text as a message of its own.
		if msg.Media == nil || msg.Media.URL == "" {
			return nil, graph.Invalid("instagram: media can only be sent by URL")
		}
		req.Message.Attachment = &sendAttachment{Type: attachmentType(msg.Type)}
		req.Message.Attachment.Payload.URL = msg.Media.URL
	default:
		return nil, graph.Invalid(fmt.Sprintf("instagram: cannot send a %q message", msg.Type))
	}
	if msg.QuotedExternalID != "" {
		req.Message.ReplyTo = &struct {
			Mid string `json:"mid"`
		}{Mid: msg.QuotedExternalID}
	}
	return req, nil
}

func attachmentType(t channel.MsgType) string {
	switch t {
	case channel.MsgImage:
		return "image"
	case channel.MsgVideo:
		return "video"
	case channel.MsgAudio, channel.MsgVoice:
		return "audio"
	}
	return "file"
}

func accountPath(creds channel.Credentials) string {
	if creds.AccountID == "" {
		return "me"
	}
	return url.PathEscape(creds.AccountID)
}
