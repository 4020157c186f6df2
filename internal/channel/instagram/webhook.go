package instagram

import (
	"encoding/json"

	"github.com/switchboard/switchboard/internal/channel/graph"
)

// Wire shapes of an Instagram messaging webhook. Events stay raw until
// decoded one by one, so one malformed event costs only itself.

type webhook struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID        graph.FlexString  `json:"id"`
	Time      graph.FlexInt     `json:"time"`
	Messaging []json.RawMessage `json:"messaging"`
	// Instagram Login apps (and dashboard test sends) may deliver the same
	// events as changes[]{field, value}.
	Changes []struct {
		Field string          `json:"field"`
		Value json.RawMessage `json:"value"`
	} `json:"changes"`
}

type party struct {
	ID graph.FlexString `json:"id"`
}

type event struct {
	Sender    party         `json:"sender"`
	Recipient party         `json:"recipient"`
	Timestamp graph.FlexInt `json:"timestamp"`

	Message  *message `json:"message"`
	Reaction *struct {
		Mid      graph.FlexString `json:"mid"`
		Action   string           `json:"action"`
		Reaction string           `json:"reaction"`
		Emoji    string           `json:"emoji"`
	} `json:"reaction"`
	Read *struct {
		Mid graph.FlexString `json:"mid"`
	} `json:"read"`
	Postback *struct {
		Mid      graph.FlexString `json:"mid"`
		Title    string           `json:"title"`
		Payload  string           `json:"payload"`
		Referral json.RawMessage  `json:"referral"`
	} `json:"postback"`
	Referral json.RawMessage `json:"referral"`
}

type message struct {
	Mid         graph.FlexString `json:"mid"`
	Text        string           `json:"text"`
	Attachments json.RawMessage  `json:"attachments"`
	ReplyTo     *struct {
		Mid   graph.FlexString `json:"mid"`
		Story *struct {
			URL string           `json:"url"`
			ID  graph.FlexString `json:"id"`
		} `json:"story"`
	} `json:"reply_to"`
	QuickReply *struct {
		Payload string `json:"payload"`
	} `json:"quick_reply"`
	Referral      json.RawMessage `json:"referral"`
	IsEcho        graph.FlexBool  `json:"is_echo"`
	IsDeleted     graph.FlexBool  `json:"is_deleted"`
	IsUnsupported graph.FlexBool  `json:"is_unsupported"`
}

type attachment struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

type attachmentPayload struct {
	URL         string           `json:"url"`
	Title       string           `json:"title"`
	ReelVideoID graph.FlexString `json:"reel_video_id"`
}
