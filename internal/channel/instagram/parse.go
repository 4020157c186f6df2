package instagram

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

// Object is the "object" field of Instagram messaging webhooks.
const Object = "instagram"

// Parser reads Instagram messaging webhooks. The zero value is ready.
type Parser struct{}

var _ channel.Parser = Parser{}

// messagingFields are the changes[] fields whose value is a messaging event.
var messagingFields = map[string]bool{
	"messages": true, "messaging_postbacks": true, "messaging_seen": true,
	"message_reactions": true, "messaging_referral": true,
}

// Parse normalises a verified webhook body, one envelope per Instagram
// account (entry.id), merged across entries in order of first appearance.
// Events it does not map (optins, handover, comments) are skipped; an event
// that does not decode but has a message id is kept as MsgUnsupported.
func (Parser) Parse(body []byte) (*channel.Batch, error) {
	var wh webhook
	if err := json.Unmarshal(body, &wh); err != nil {
		return nil, fmt.Errorf("instagram: parse webhook: %w", err)
	}
	if wh.Object != Object {
		return nil, fmt.Errorf("instagram: parse webhook: object is %q, want %q", wh.Object, Object)
	}
	b := &channel.Batch{}
	byAccount := map[string]int{}
	for _, e := range wh.Entry {
		env := channel.Envelope{ChannelType: channel.Instagram, AccountID: string(e.ID)}
		events := e.Messaging
		for _, ch := range e.Changes {
			if messagingFields[ch.Field] && len(ch.Value) > 0 {
				events = append(events, ch.Value)
			}
		}
		for _, raw := range events {
			parseEvent(raw, int64(e.Time), &env)
		}
		if len(env.Messages)+len(env.Statuses) == 0 {
			continue
		}
		if k, ok := byAccount[env.AccountID]; ok {
			prev := &b.Envelopes[k]
			prev.Messages = append(prev.Messages, env.Messages...)
			prev.Statuses = append(prev.Statuses, env.Statuses...)
			continue
		}
		byAccount[env.AccountID] = len(b.Envelopes)
		b.Envelopes = append(b.Envelopes, env)
	}
	return b, nil
}

func parseEvent(raw json.RawMessage, entryTime int64, env *channel.Envelope) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		if m, ok := salvage(raw, err); ok {
			env.Messages = append(env.Messages, m)
		}
		return
	}
	tsRaw := int64(ev.Timestamp)
	if tsRaw == 0 {
		tsRaw = entryTime
	}
	ts := msTime(tsRaw)
	sender := string(ev.Sender.ID)
	switch {
	case ev.Message != nil:
		if m, ok := parseMessage(&ev, ts); ok {
			env.Messages = append(env.Messages, m)
		}
	case ev.Reaction != nil:
		r := ev.Reaction
		if r.Mid == "" {
			return
		}
		// Reactions carry no id of their own; this one is stable across
		// re-deliveries of the same event and differs between a react and
		// a later unreact.
		id := fmt.Sprintf("reaction:%s:%s:%s:%d", r.Mid, sender, r.Action, tsRaw)
		in := channel.Inbound{
			ExternalID: id,
			Customer:   channel.Customer{ExternalID: sender},
			Type:       channel.MsgReaction,
			Timestamp:  ts,
			Reaction:   &channel.Reaction{TargetExternalID: string(r.Mid)},
			Extra:      map[string]any{"action": r.Action},
		}
		if r.Action != "unreact" {
			in.Reaction.Emoji = r.Emoji
			if in.Reaction.Emoji == "" {
				in.Reaction.Emoji = reactionEmoji(r.Reaction)
			}
		}
		if r.Reaction != "" {
			in.Extra["reaction"] = r.Reaction
		}
		env.Messages = append(env.Messages, in)
	case ev.Read != nil:
		// Messenger-style watermark reads carry no mid and name no message.
		if ev.Read.Mid != "" {
			env.Statuses = append(env.Statuses, channel.StatusUpdate{
				ExternalID: string(ev.Read.Mid), Status: channel.StatusRead, Timestamp: ts, RecipientID: sender,
			})
		}
	case ev.Postback != nil:
		p := ev.Postback
		id := string(p.Mid)
		if id == "" {
			id = fmt.Sprintf("postback:%s:%d", sender, tsRaw)
		}
		in := channel.Inbound{
			ExternalID: id,
			Customer:   channel.Customer{ExternalID: sender},
			Type:       channel.MsgPostback,
			Text:       p.Title,
			Timestamp:  ts,
			Extra:      map[string]any{"payload": p.Payload},
		}
		if ref := graph.DecodeAny(p.Referral); ref != nil {
			in.Extra["referral"] = ref
		}
		env.Messages = append(env.Messages, in)
	case len(ev.Referral) > 0:
		// A referral alone (ig.me link, ad) says where the customer came
		// from but has no content. It is kept, as unsupported, so the
		// attribution is not lost; nothing should show it as a message.
		ref := graph.DecodeAny(ev.Referral)
		if ref == nil {
			return
		}
		env.Messages = append(env.Messages, channel.Inbound{
			ExternalID: fmt.Sprintf("referral:%s:%d", sender, tsRaw),
			Customer:   channel.Customer{ExternalID: sender},
			Type:       channel.MsgUnsupported,
			Timestamp:  ts,
			Extra:      map[string]any{"original_type": "referral", "referral": ref},
		})
	}
}

// reactionEmoji stands in for the emoji when Meta sends only the
// reaction's name; "love" is the one Instagram documents.
func reactionEmoji(name string) string {
	switch name {
	case "love", "":
		return "❤️"
	case "like":
		return "👍"
	case "haha":
		return "😆"
	case "wow":
		return "😮"
	case "sad":
		return "😢"
	case "angry":
		return "😡"
	}
	return name
}

// msTime reads Instagram's millisecond timestamps. Values too small to be
// milliseconds since 1973 are taken as seconds, which the changes[] form
// has been seen to use.
func msTime(v int64) time.Time {
	switch {
	case v <= 0:
		return time.Time{}
	case v < 1e11:
		return time.Unix(v, 0).UTC()
	case v > 253402300799999: // past year 9999: cannot be stored as JSON
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// salvage keeps a message event whose details did not decode, as
// MsgUnsupported, when its mid can still be read.
func salvage(raw json.RawMessage, err error) (channel.Inbound, bool) {
	f := graph.Fields(raw)
	msg := graph.Fields(f["message"])
	mid := graph.Field[graph.FlexString](msg, "mid")
	if mid == "" {
		return channel.Inbound{}, false
	}
	customer := graph.Field[party](f, "sender")
	echo := graph.Field[graph.FlexBool](msg, "is_echo")
	if echo {
		customer = graph.Field[party](f, "recipient")
	}
	return channel.Inbound{
		ExternalID: string(mid),
		Customer:   channel.Customer{ExternalID: string(customer.ID)},
		Type:       channel.MsgUnsupported,
		Echo:       bool(echo),
		Timestamp:  msTime(int64(graph.Field[graph.FlexInt](f, "timestamp"))),
		Extra:      map[string]any{"original_type": "message", "decode_error": err.Error()},
	}, true
}
