package whatsapp

import (
	"encoding/json"
	"strings"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

func parseMessage(raw json.RawMessage, contacts []contact) (channel.Inbound, bool) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		return salvage(raw, contacts, err)
	}
	if m.ID == "" {
		return channel.Inbound{}, false
	}
	in := channel.Inbound{
		ExternalID: string(m.ID),
		Customer:   customer(m.From, m.FromUserID, contacts),
		Timestamp:  unixTime(int64(m.Timestamp)),
	}
	extra := map[string]any{}
	if m.FromUserID != "" && string(m.FromUserID) != in.Customer.ExternalID {
		extra["user_id"] = string(m.FromUserID)
	}
	for _, e := range m.Errors {
		in.Errors = append(in.Errors, e.provider())
	}
	if c := m.Context; c != nil {
		in.QuotedExternalID = string(c.ID)
		in.Forwarded = bool(c.Forwarded || c.FrequentlyForwarded)
		if c.FrequentlyForwarded {
			extra["frequently_forwarded"] = true
		}
	}
	if ref := graph.DecodeAny(m.Referral); ref != nil {
		extra["referral"] = ref
	}
	if !fillContent(&in, &m, extra) {
		in.Type = channel.MsgUnsupported
		orig := m.Type
		if m.Unsupported != nil && m.Unsupported.Type != "" {
			orig = m.Unsupported.Type
		}
		extra["original_type"] = orig
		// Keep the payload of a kind we do not map yet (order,
		// request_welcome, ...) so nothing is lost for later.
		if m.Type != "" && m.Type != "unsupported" {
			if p := graph.DecodeAny(graph.Fields(raw)[m.Type]); p != nil {
				extra[m.Type] = p
			}
		}
	}
	if len(extra) > 0 {
		in.Extra = extra
	}
	return in, true
}

// fillContent maps the type-specific object; false when the type is one we
// do not map or its object is missing.
func fillContent(in *channel.Inbound, m *message, extra map[string]any) bool {
	switch m.Type {
	case "text":
		in.Type = channel.MsgText
		if m.Text != nil {
			in.Text = m.Text.Body
		}
		return true
	case "image":
		return setMedia(in, channel.MsgImage, m.Image)
	case "video":
		return setMedia(in, channel.MsgVideo, m.Video)
	case "document":
		return setMedia(in, channel.MsgDocument, m.Document)
	case "sticker":
		return setMedia(in, channel.MsgSticker, m.Sticker)
	case "audio":
		t := channel.MsgAudio
		if m.Audio != nil && m.Audio.Voice {
			t = channel.MsgVoice
		}
		return setMedia(in, t, m.Audio)
	case "location":
		if m.Location == nil {
			return false
		}
		l := m.Location
		in.Type = channel.MsgLocation
		in.Location = &channel.Location{Latitude: l.Latitude, Longitude: l.Longitude, Name: l.Name, Address: l.Address, URL: l.URL}
		return true
	case "contacts":
		cards, ok := graph.DecodeAny(m.Contacts).([]any)
		if !ok {
			return false
		}
		in.Type = channel.MsgContacts
		in.Text = contactsSummary(m.Contacts)
		extra["contacts"] = cards
		return true
	case "interactive":
		return fillInteractive(in, m, extra)
	case "button":
		if m.Button == nil {
			return false
		}
		in.Type = channel.MsgButton
		in.Text = m.Button.Text
		extra["payload"] = m.Button.Payload
		return true
	case "reaction":
		if m.Reaction == nil {
			return false
		}
		in.Type = channel.MsgReaction
		in.Reaction = &channel.Reaction{TargetExternalID: string(m.Reaction.MessageID), Emoji: m.Reaction.Emoji}
		return true
	case "system":
		if m.System == nil {
			return false
		}
		s := m.System
		in.Type = channel.MsgSystem
		in.Text = s.Body
		setIf(extra, "system_type", s.Type)
		setIf(extra, "wa_id", string(s.WaID))
		setIf(extra, "new_wa_id", string(s.NewWaID))
		setIf(extra, "identity", s.Identity)
		return true
	}
	return false
}

func setMedia(in *channel.Inbound, t channel.MsgType, m *media) bool {
	if m == nil {
		return false
	}
	in.Type = t
	in.Media = &channel.Media{
		ProviderID: string(m.ID),
		MimeType:   m.MimeType,
		SHA256:     m.SHA256,
		Caption:    m.Caption,
		Filename:   m.Filename,
		Animated:   bool(m.Animated),
	}
	return true
}

func fillInteractive(in *channel.Inbound, m *message, extra map[string]any) bool {
	it := m.Interactive
	if it == nil {
		return false
	}
	in.Type = channel.MsgInteractive
	extra["interactive_type"] = it.Type
	switch {
	case it.Type == "button_reply" && it.ButtonReply != nil:
		in.Text = it.ButtonReply.Title
		extra["reply_id"] = string(it.ButtonReply.ID)
	case it.Type == "list_reply" && it.ListReply != nil:
		in.Text = it.ListReply.Title
		extra["reply_id"] = string(it.ListReply.ID)
		setIf(extra, "description", it.ListReply.Description)
	case it.Type == "nfm_reply" && it.NfmReply != nil:
		// A Flow answer: the form data is the JSON string response_json.
		in.Text = it.NfmReply.Body
		setIf(extra, "flow_name", it.NfmReply.Name)
		setIf(extra, "response_json", it.NfmReply.ResponseJSON)
		if r := graph.DecodeAny(json.RawMessage(it.NfmReply.ResponseJSON)); r != nil {
			extra["response"] = r
		}
	}
	return true
}

// contactsSummary renders shared cards as "Name: +7 916 …, +7 495 …", one
// per line, for a CRM that shows only text.
func contactsSummary(raw json.RawMessage) string {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return ""
	}
	var lines []string
	for _, item := range items {
		var c sharedContact
		if json.Unmarshal(item, &c) != nil {
			continue
		}
		name := c.Name.FormattedName
		if name == "" {
			name = strings.TrimSpace(c.Name.FirstName + " " + c.Name.LastName)
		}
		if name == "" {
			name = c.Org.Company
		}
		var phones []string
		for _, p := range c.Phones {
			switch {
			case p.Phone != "":
				phones = append(phones, p.Phone)
			case p.WaID != "":
				phones = append(phones, "+"+string(p.WaID))
			}
		}
		line := name
		if len(phones) > 0 {
			if line != "" {
				line += ": "
			}
			line += strings.Join(phones, ", ")
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

// salvage keeps what can be read of a message whose type-specific part did
// not decode, as MsgUnsupported.
func salvage(raw json.RawMessage, contacts []contact, err error) (channel.Inbound, bool) {
	f := graph.Fields(raw)
	id := graph.Field[graph.FlexString](f, "id")
	if id == "" {
		return channel.Inbound{}, false
	}
	return channel.Inbound{
		ExternalID: string(id),
		Customer:   customer(graph.Field[graph.FlexString](f, "from"), graph.Field[graph.FlexString](f, "from_user_id"), contacts),
		Type:       channel.MsgUnsupported,
		Timestamp:  unixTime(int64(graph.Field[graph.FlexInt](f, "timestamp"))),
		Extra: map[string]any{
			"original_type": graph.Field[string](f, "type"),
			"decode_error":  err.Error(),
		},
	}, true
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}
