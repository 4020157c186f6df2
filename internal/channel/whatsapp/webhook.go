package whatsapp

import (
	"encoding/json"

	"github.com/switchboard/switchboard/internal/channel/graph"
)

// Wire shapes of a WhatsApp Cloud API webhook. Lists below the change value
// stay raw so one malformed item costs that item, not the whole delivery
// (which Meta would otherwise re-deliver for a week).

type webhook struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID      graph.FlexString `json:"id"`
	Changes []change         `json:"changes"`
}

type change struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

type value struct {
	Metadata struct {
		DisplayPhoneNumber graph.FlexString `json:"display_phone_number"`
		PhoneNumberID      graph.FlexString `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []json.RawMessage `json:"contacts"`
	Messages []json.RawMessage `json:"messages"`
	Statuses []json.RawMessage `json:"statuses"`
	Errors   []json.RawMessage `json:"errors"`
}

type contact struct {
	WaID    graph.FlexString `json:"wa_id"`
	UserID  graph.FlexString `json:"user_id"`
	Profile struct {
		Name     string `json:"name"`
		Username string `json:"username"`
	} `json:"profile"`
}

type message struct {
	From       graph.FlexString `json:"from"`
	FromUserID graph.FlexString `json:"from_user_id"`
	ID         graph.FlexString `json:"id"`
	Timestamp  graph.FlexInt    `json:"timestamp"`
	Type       string           `json:"type"`

	Context *struct {
		From                graph.FlexString `json:"from"`
		ID                  graph.FlexString `json:"id"`
		Forwarded           graph.FlexBool   `json:"forwarded"`
		FrequentlyForwarded graph.FlexBool   `json:"frequently_forwarded"`
	} `json:"context"`
	Referral json.RawMessage `json:"referral"`
	Errors   []wireError     `json:"errors"`

	Text *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image       *media          `json:"image"`
	Video       *media          `json:"video"`
	Audio       *media          `json:"audio"`
	Document    *media          `json:"document"`
	Sticker     *media          `json:"sticker"`
	Location    *location       `json:"location"`
	Contacts    json.RawMessage `json:"contacts"`
	Interactive *struct {
		Type        string    `json:"type"`
		ButtonReply *replyRow `json:"button_reply"`
		ListReply   *replyRow `json:"list_reply"`
		NfmReply    *struct {
			Name         string `json:"name"`
			Body         string `json:"body"`
			ResponseJSON string `json:"response_json"`
		} `json:"nfm_reply"`
	} `json:"interactive"`
	Button *struct {
		Text    string `json:"text"`
		Payload string `json:"payload"`
	} `json:"button"`
	Reaction *struct {
		MessageID graph.FlexString `json:"message_id"`
		Emoji     string           `json:"emoji"`
	} `json:"reaction"`
	System *struct {
		Body     string           `json:"body"`
		Type     string           `json:"type"`
		WaID     graph.FlexString `json:"wa_id"`
		NewWaID  graph.FlexString `json:"new_wa_id"`
		Identity string           `json:"identity"`
	} `json:"system"`
	Unsupported *struct {
		Type string `json:"type"`
	} `json:"unsupported"`
}

type media struct {
	ID       graph.FlexString `json:"id"`
	MimeType string           `json:"mime_type"`
	SHA256   string           `json:"sha256"`
	Caption  string           `json:"caption"`
	Filename string           `json:"filename"`
	Animated graph.FlexBool   `json:"animated"`
	Voice    graph.FlexBool   `json:"voice"`
}

type location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name"`
	Address   string  `json:"address"`
	URL       string  `json:"url"`
}

type replyRow struct {
	ID          graph.FlexString `json:"id"`
	Title       string           `json:"title"`
	Description string           `json:"description"`
}

// sharedContact is the part of a shared contact card used for the summary;
// the whole card is kept in Extra.
type sharedContact struct {
	Name struct {
		FormattedName string `json:"formatted_name"`
		FirstName     string `json:"first_name"`
		LastName      string `json:"last_name"`
	} `json:"name"`
	Org struct {
		Company string `json:"company"`
	} `json:"org"`
	Phones []struct {
		Phone string           `json:"phone"`
		WaID  graph.FlexString `json:"wa_id"`
	} `json:"phones"`
}

type status struct {
	ID              graph.FlexString `json:"id"`
	Status          string           `json:"status"`
	Timestamp       graph.FlexInt    `json:"timestamp"`
	RecipientID     graph.FlexString `json:"recipient_id"`
	RecipientUserID graph.FlexString `json:"recipient_user_id"`
	Errors          []wireError      `json:"errors"`
}

type wireError struct {
	Code      graph.FlexInt   `json:"code"`
	Subcode   graph.FlexInt   `json:"error_subcode"`
	Title     string          `json:"title"`
	Message   string          `json:"message"`
	ErrorData graph.ErrorData `json:"error_data"`
}
