package instagram

import (
	"encoding/json"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

func parseMessage(ev *event, ts time.Time) (channel.Inbound, bool) {
	m := ev.Message
	if m.Mid == "" {
		return channel.Inbound{}, false
	}
	in := channel.Inbound{
		ExternalID: string(m.Mid),
		Customer:   channel.Customer{ExternalID: string(ev.Sender.ID)},
		Text:       m.Text,
		Timestamp:  ts,
		Echo:       bool(m.IsEcho),
		Deleted:    bool(m.IsDeleted),
	}
	if in.Echo {
		// An echo is the business speaking: the customer is the recipient.
		in.Customer.ExternalID = string(ev.Recipient.ID)
	}
	extra := map[string]any{}
	if r := m.ReplyTo; r != nil {
		in.QuotedExternalID = string(r.Mid)
		if r.Story != nil {
			extra["story_reply"] = true
			extra["story"] = map[string]any{"url": r.Story.URL, "id": string(r.Story.ID)}
		}
	}
	if m.QuickReply != nil {
		extra["quick_reply_payload"] = m.QuickReply.Payload
	}
	if ref := graph.DecodeAny(m.Referral); ref != nil {
		extra["referral"] = ref
	}

	var atts []attachment
	if len(m.Attachments) > 0 && json.Unmarshal(m.Attachments, &atts) == nil && len(atts) > 1 {
		extra["attachments"] = graph.DecodeAny(m.Attachments)
	}
	switch {
	case in.Deleted:
		// Only a notice that the customer unsent ExternalID: no content.
		in.Type = channel.MsgSystem
	case bool(m.IsUnsupported):
		in.Type = channel.MsgUnsupported
		extra["original_type"] = "unsupported"
	case len(atts) > 0:
		applyAttachment(&in, atts[0], extra)
	case in.Text != "":
		in.Type = channel.MsgText
	default:
		in.Type = channel.MsgUnsupported
		extra["original_type"] = "message"
	}
	if len(extra) > 0 {
		in.Extra = extra
	}
	return in, true
}

// applyAttachment types the message by its first attachment.
func applyAttachment(in *channel.Inbound, a attachment, extra map[string]any) {
	var p attachmentPayload
	_ = json.Unmarshal(a.Payload, &p) // a payload we cannot read leaves the URL empty
	media := func(t channel.MsgType) {
		in.Type = t
		in.Media = &channel.Media{URL: p.URL}
	}
	switch a.Type {
	case "image":
		media(channel.MsgImage)
	case "video":
		media(channel.MsgVideo)
	case "audio":
		media(channel.MsgAudio)
	case "file":
		media(channel.MsgDocument)
	case "story_mention":
		media(channel.MsgStoryMention)
	case "share", "ig_reel", "reel", "ig_post":
		in.Type = channel.MsgShare
		extra["share_type"] = a.Type
		if p.URL != "" {
			extra["url"] = p.URL
		}
		if p.Title != "" {
			extra["title"] = p.Title
		}
		if p.ReelVideoID != "" {
			extra["reel_video_id"] = string(p.ReelVideoID)
		}
	case "like_heart":
		// The heart sticker: shown as the emoji so a text-only CRM sees it.
		in.Type = channel.MsgText
		if in.Text == "" {
			in.Text = "❤️"
		}
		extra["like_heart"] = true
	default: // unsupported_type, template, anything new
		in.Type = channel.MsgUnsupported
		extra["original_type"] = a.Type
		if pl := graph.DecodeAny(a.Payload); pl != nil {
			extra["payload"] = pl
		}
	}
}
