package amocrm

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Our messages to a customer (written in amoCRM, in the cabinet, through
// the API or by the digital pipeline) are mirrored into the lead with the
// customer's, in order and by the binding's mode, so the lead's feed is
// the whole conversation; each says who wrote it: the amoCRM user, or
// Switchboard for everything else.

// The Service mirrors outbound messages.
var _ routing.OutboundMirror = (*Service)(nil)

// MirrorsOutbound implements routing.OutboundMirror: every amoCRM binding
// writes notes, and a note feed without the manager's side reads as a
// monologue.
func (s *Service) MirrorsOutbound(b *store.ChannelBinding) bool { return b.Mode == ModeCRM }

// authorWords name our messages' authors, by language.
var authorWords = map[string][3]string{
	"ru": {"Менеджер", "Switchboard", "Автоматизация %s"},
	"en": {"Manager", "Switchboard", "%s automation"},
}

// authors words the author of each outbound message of msgs, by message
// id: "Manager <name>" for what an amoCRM user wrote; "<name> (<CRM>)" or
// "<CRM> automation" for what another CRM of the channel sent (its Open
// Line's operator, its robot); Switchboard for the rest. Names come from
// the stored users (no API call); a user not stored is named by id.
func (s *Service) authors(ctx context.Context, in *store.Integration, msgs []store.MessageView) (map[string]string, error) {
	w := authorWords[lang(in)]
	out := map[string]string{}
	var names map[string]string
	for _, m := range msgs {
		if m.Direction != store.Outbound {
			continue
		}
		// SendAsManager marks what the account sent as its own
		// (routing.MarkOrigin): a user by id, the digital pipeline by "".
		uid, err := s.store.RemoteOf(ctx, in.ID, routing.LinkOrigin, m.ID)
		if errors.Is(err, store.ErrNotFound) && s.router != nil {
			o, err := s.router.OriginOf(ctx, in.ID, m.ID)
			if err != nil {
				return nil, err
			}
			out[m.ID] = foreignAuthor(w, o)
			continue
		}
		if errors.Is(err, store.ErrNotFound) || (err == nil && uid == "") {
			out[m.ID] = w[1]
			continue
		}
		if err != nil {
			return nil, err
		}
		if names == nil {
			users, err := s.store.CRMUsers(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			names = map[string]string{}
			for _, u := range users {
				names[u.UserID] = cleanLine(u.Name)
			}
		}
		name := names[uid]
		if name == "" {
			name = "#" + uid
		}
		out[m.ID] = w[0] + " " + name
	}
	return out, nil
}

// foreignAuthor words the author of a message another CRM of the channel
// sent, or Switchboard's when none did (the cabinet, the API).
func foreignAuthor(w [3]string, o *routing.Origin) string {
	switch {
	case o.IntegrationID == "" || o.CRM == "":
		return w[1]
	case o.UserID == "":
		return fmt.Sprintf(w[2], cleanLine(o.CRM))
	}
	return cleanLine(cmp.Or(o.UserName, "#"+o.UserID)) + " (" + cleanLine(o.CRM) + ")"
}

// hasOutbound says whether any of msgs is ours.
func hasOutbound(msgs []store.MessageView) bool {
	for _, m := range msgs {
		if m.Direction == store.Outbound {
			return true
		}
	}
	return false
}
