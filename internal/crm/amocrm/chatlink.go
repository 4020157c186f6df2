package amocrm

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// One lead per customer. amoCRM makes an incoming (unsorted) lead and a
// contact of its own at the first message of a chat that belongs to no
// contact; with the lead our connector creates (leads/complex) that would
// be two leads and two contacts for every new customer. So before a
// customer's first message goes into amojo, the chat is created in
// advance (POST /v2/origin/custom/{scope_id}/chats) and linked to OUR
// contact (POST /api/v4/contacts/chats); its messages then join that
// contact and amoCRM makes no lead.
//
// Our contact comes from the mirror job or EnsureRecord, which every
// binding (amoCRM has only the CRM mode) runs at the customer's first
// message, beside the chat job. The chat job waits for it, snoozing a few
// seconds at a time, but only for ChatContactWait from its first look:
// when the contact does not come (amoCRM refuses our leads, or is down
// for them while amojo works) the message goes into the chat unlinked all
// the same. An incoming lead in amoCRM is better than a customer's message
// held back for good. Should our contact come later, the chat is linked
// to it then (amoCRM's own lead stays; a manager merges or closes it).
//
// The state is one crm_links row per customer (linkAmojoContact), so it is
// done once per customer across retries and instances:
//
//	(none)          not looked at yet
//	wait:<unix>     waiting for our contact since then
//	<contact id>    the chat is linked to that contact
//	none            sent without a contact (amoCRM made its own)
//	refused:<id>    amoCRM refused the link to that contact: not asked again
//
// A lead deleted in amoCRM is replaced by a new one on the same contact
// (connector.go), so the chat stays in the customer's card and shows in
// the new lead. A contact deleted in amoCRM is replaced too (the mirror
// job finds it gone when a new lead names it): our contact link then
// names the new contact, the state no longer matches it, and the next
// message links the chat to the new contact (amoCRM moves a linked chat).
// A message sent before the replacement goes into the chat as it is.
const (
	// linkAmojoContact ties a store contact to the state above.
	linkAmojoContact = "amojo_chat_contact"
	// linkAmojoChatID ties a store contact to amojo's id of its chat.
	linkAmojoChatID = "amojo_chat_id"

	chatWaitPrefix    = "wait:"
	chatUnlinked      = "none"
	chatRefusedPrefix = "refused:"
)

// DefaultChatContactWait is how long a new customer's first message waits
// for our contact by default: the mirror job or EnsureRecord makes it
// within seconds when amoCRM works.
const DefaultChatContactWait = 2 * time.Minute

// contactPoll is how often a waiting chat job looks for the contact.
const contactPoll = 3 * time.Second

// errNoContact: the customer's contact is not made yet.
var errNoContact = errors.New("amocrm: waiting for the customer's contact before opening the chat")

func (s *Service) chatContactWait() time.Duration {
	if s.cfg.ChatContactWait > 0 {
		return s.cfg.ChatContactWait
	}
	return DefaultChatContactWait
}

// prepareChat makes sure the customer's chat belongs to our contact before
// a message goes into it (see above). nil means send now; otherwise the
// error is the queue's (snooze while waiting, retry on a failure within
// the bound).
func (s *Service) prepareChat(ctx context.Context, d *routing.Delivery, ct *store.Contact, scope, conv string) error {
	in := d.Integration
	state, err := s.store.RemoteOf(ctx, in.ID, linkAmojoContact, ct.ID)
	if errors.Is(err, store.ErrNotFound) {
		state, err = "", nil
	}
	if err != nil {
		return err
	}
	contactID, err := s.remoteInt(ctx, in.ID, linkContact, ct.ID)
	if err != nil {
		return err
	}
	want := strconv.Itoa(contactID)
	switch {
	case contactID != 0 && (state == want || state == chatRefusedPrefix+want):
		return nil // linked, or amoCRM will not link it
	case contactID == 0 && (state == chatUnlinked || strings.HasPrefix(state, chatRefusedPrefix)):
		return nil // it is amoCRM's chat already: no more waiting
	}
	// late: the chat has had messages without our contact; linking it now
	// is worth one try, never a wait. A chat from before chats were linked
	// has messages but no state.
	late := state == chatUnlinked || strings.HasPrefix(state, chatRefusedPrefix)
	if state == "" {
		switch _, err := s.store.RemoteOf(ctx, in.ID, linkAmojoChat, ct.ID); {
		case err == nil:
			late = true
			if contactID == 0 {
				return s.setChatState(ctx, in.ID, ct.ID, chatUnlinked, true)
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	now := time.Now()
	since := now
	if v, ok := strings.CutPrefix(state, chatWaitPrefix); ok {
		if n, perr := strconv.ParseInt(v, 10, 64); perr == nil {
			since = time.Unix(n, 0)
		}
	} else if state == "" && !late {
		if err := s.setChatState(ctx, in.ID, ct.ID, chatWaitPrefix+strconv.FormatInt(now.Unix(), 10), false); err != nil {
			return err
		}
	}
	left := s.chatContactWait() - now.Sub(since)
	if contactID == 0 {
		if left > 0 {
			return queue.Snooze(now.Add(min(contactPoll, left)), errNoContact)
		}
		s.log.Warn("amocrm: the customer's contact did not come in time; the chat goes on without it (amoCRM adds an incoming lead)",
			"integration_id", in.ID, "contact_id", ct.ID, "waited", s.chatContactWait())
		return s.setChatState(ctx, in.ID, ct.ID, chatUnlinked, true)
	}
	err = s.linkChat(ctx, d, ct, scope, conv, contactID)
	switch {
	case err == nil:
		return s.setChatState(ctx, in.ID, ct.ID, want, true)
	case errors.Is(err, errScopeGone):
		return err
	case Permanent(err):
		s.log.Warn("amocrm: amoCRM refused to link the chat to the customer's contact; it goes on unlinked",
			"integration_id", in.ID, "contact_id", ct.ID, "amocrm_contact", contactID, "err", err)
		return s.setChatState(ctx, in.ID, ct.ID, chatRefusedPrefix+want, true)
	case late:
		s.log.Warn("amocrm: linking the chat failed; tried again at the next message", "integration_id", in.ID, "contact_id", ct.ID, "err", err)
		return nil
	case left <= 0:
		s.log.Warn("amocrm: linking the chat kept failing; the chat goes on without the link", "integration_id", in.ID, "contact_id", ct.ID, "err", err)
		return s.setChatState(ctx, in.ID, ct.ID, chatUnlinked, true)
	}
	return Classify(err)
}

// setChatState records the customer's chat state: replace moves it, else
// the first record wins (two runs starting the wait keep one start).
func (s *Service) setChatState(ctx context.Context, integrationID, contactID, state string, replace bool) error {
	put := store.PutLink
	if replace {
		put = store.ReplaceLink
	}
	return s.store.Tx(ctx, func(tx *gorm.DB) error { return put(tx, integrationID, linkAmojoContact, contactID, state) })
}

// errScopeGone: amojo no longer knows the account's scope; the caller
// connects again and retries.
var errScopeGone = errors.New("amocrm: amojo scope gone")

// linkChat creates the customer's chat in amojo (once: its id is kept)
// and links it to contactID through the account's API. Both calls are
// idempotent: amojo returns the chat it has for the conversation, and
// linking a chat to the contact it is linked to changes nothing.
func (s *Service) linkChat(ctx context.Context, d *routing.Delivery, ct *store.Contact, scope, conv string, contactID int) error {
	in := d.Integration
	chatID, err := s.store.RemoteOf(ctx, in.ID, linkAmojoChatID, ct.ID)
	if errors.Is(err, store.ErrNotFound) {
		chat, cerr := s.amojoFor(in).CreateChat(ctx, scope, conv, s.amojoSender(d, ct))
		if errors.Is(cerr, ErrNotFound) {
			return s.reconnect(ctx, in, cerr)
		}
		if cerr != nil {
			return cerr
		}
		chatID = chat.ID
		err = s.store.Tx(ctx, func(tx *gorm.DB) error { return store.PutLink(tx, in.ID, linkAmojoChatID, ct.ID, chatID) })
	}
	if err != nil {
		return err
	}
	_, err = s.API(in).LinkChats(ctx, []ChatLink{{ChatID: chatID, ContactID: contactID}})
	return err
}

// reconnect queues the channel's connection again after amojo answered
// 404 for the account's scope (disconnected in amoCRM); the message is
// retried after it.
func (s *Service) reconnect(ctx context.Context, in *store.Integration, cause error) error {
	s.log.Warn("amocrm: amojo scope not found; connecting again", "integration_id", in.ID)
	if err := s.enqueueAmojoConnect(ctx, in); err != nil {
		return err
	}
	return queue.RetryAfter(connectRetry, errors.Join(errScopeGone, cause))
}
