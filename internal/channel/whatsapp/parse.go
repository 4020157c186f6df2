package whatsapp

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

// Object is the "object" field of WhatsApp Cloud API webhooks.
const Object = "whatsapp_business_account"

// Parser reads WhatsApp Cloud API webhooks. The zero value is ready.
type Parser struct{}

var _ channel.Parser = Parser{}

// Parse normalises a verified webhook body. Changes other than "messages"
// (template status, account updates) are skipped. Envelopes are merged per
// (WABA, phone_number_id), in order of first appearance; the WABA is the
// entry's id, kept as the envelope's Owner. A message that cannot be
// decoded but has an id is kept as MsgUnsupported, so one odd message does
// not make Meta re-deliver the whole batch; items without an id are
// dropped because nothing downstream could deduplicate them.
func (Parser) Parse(body []byte) (*channel.Batch, error) {
	var wh webhook
	if err := json.Unmarshal(body, &wh); err != nil {
		return nil, fmt.Errorf("whatsapp: parse webhook: %w", err)
	}
	if wh.Object != Object {
		return nil, fmt.Errorf("whatsapp: parse webhook: object is %q, want %q", wh.Object, Object)
	}
	b := &channel.Batch{}
	type key struct{ owner, account string }
	byAccount := map[key]int{}
	for i, e := range wh.Entry {
		for j, ch := range e.Changes {
			if ch.Field != "messages" || len(ch.Value) == 0 {
				continue
			}
			var v value
			if err := json.Unmarshal(ch.Value, &v); err != nil {
				return nil, fmt.Errorf("whatsapp: parse webhook: entry %d change %d: %w", i, j, err)
			}
			env := parseValue(&v)
			env.Owner = string(e.ID)
			if len(env.Messages)+len(env.Statuses)+len(env.Errors) == 0 {
				continue
			}
			k := key{env.Owner, env.AccountID}
			if at, ok := byAccount[k]; ok {
				prev := &b.Envelopes[at]
				prev.Messages = append(prev.Messages, env.Messages...)
				prev.Statuses = append(prev.Statuses, env.Statuses...)
				prev.Errors = append(prev.Errors, env.Errors...)
				continue
			}
			byAccount[k] = len(b.Envelopes)
			b.Envelopes = append(b.Envelopes, env)
		}
	}
	return b, nil
}

func parseValue(v *value) channel.Envelope {
	env := channel.Envelope{ChannelType: channel.WhatsApp, AccountID: string(v.Metadata.PhoneNumberID)}
	var contacts []contact
	for _, raw := range v.Contacts {
		var c contact
		if json.Unmarshal(raw, &c) == nil {
			contacts = append(contacts, c)
		}
	}
	for _, raw := range v.Messages {
		if m, ok := parseMessage(raw, contacts); ok {
			env.Messages = append(env.Messages, m)
		}
	}
	for _, raw := range v.Statuses {
		if s, ok := parseStatus(raw); ok {
			env.Statuses = append(env.Statuses, s)
		}
	}
	for _, raw := range v.Errors {
		var we wireError
		if json.Unmarshal(raw, &we) == nil {
			env.Errors = append(env.Errors, we.provider())
		}
	}
	return env
}

func parseStatus(raw json.RawMessage) (channel.StatusUpdate, bool) {
	var s status
	if err := json.Unmarshal(raw, &s); err != nil {
		// Keep the status itself even if its errors[] is odd.
		s = status{}
		f := graph.Fields(raw)
		s.ID = graph.Field[graph.FlexString](f, "id")
		s.Status = graph.Field[string](f, "status")
		s.Timestamp = graph.Field[graph.FlexInt](f, "timestamp")
		s.RecipientID = graph.Field[graph.FlexString](f, "recipient_id")
		s.RecipientUserID = graph.Field[graph.FlexString](f, "recipient_user_id")
	}
	if s.ID == "" || s.Status == "" {
		return channel.StatusUpdate{}, false
	}
	su := channel.StatusUpdate{
		ExternalID:  string(s.ID),
		Status:      channel.Status(strings.ToLower(s.Status)),
		Timestamp:   unixTime(int64(s.Timestamp)),
		RecipientID: string(cmp.Or(s.RecipientID, s.RecipientUserID)),
	}
	if len(s.Errors) > 0 {
		pe := s.Errors[0].provider()
		su.Error = &pe
	}
	return su, true
}

func (e wireError) provider() channel.ProviderError {
	return channel.ProviderError{
		Code:    int(e.Code),
		Subcode: int(e.Subcode),
		Title:   e.Title,
		Message: e.Message,
		Details: e.ErrorData.Details,
	}
}

// customer identifies the sender by wa_id, or by the business-scoped user
// id for users who hide their number. The profile comes from the contacts[]
// entry with the same id: Meta does not promise contacts[] is in message
// order.
func customer(from, userID graph.FlexString, contacts []contact) channel.Customer {
	c := channel.Customer{ExternalID: string(cmp.Or(from, userID))}
	var match *contact
	for i := range contacts {
		ct := &contacts[i]
		if (from != "" && ct.WaID == from) || (from == "" && userID != "" && ct.UserID == userID) {
			match = ct
			break
		}
	}
	if match == nil && c.ExternalID == "" && len(contacts) == 1 {
		// No id on the message at all: a lone contact can only be its sender.
		match = &contacts[0]
		from = match.WaID
		c.ExternalID = string(cmp.Or(match.WaID, match.UserID))
	}
	if match != nil {
		c.Name = match.Profile.Name
		c.Username = match.Profile.Username
	}
	if isDigits(string(from)) {
		c.Phone = "+" + string(from)
	}
	return c
}

func unixTime(sec int64) time.Time {
	// Beyond year 9999 a time cannot be marshalled to JSON; such a value is
	// junk anyway.
	if sec <= 0 || sec > 253402300799 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
