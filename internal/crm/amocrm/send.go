package amocrm

import (
	"context"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// SendAsManager stores and queues a message an amoCRM user (or, with
// userID "", the account's automation: the digital pipeline) writes to a
// channel's customer. Every path a message leaves amoCRM by goes through
// it: the card window, amojo's outgoing hook, the digital pipeline.
//
// In the transaction that accepts the message it claims the customer for
// this account on a channel in branch mode (routing.ClaimOutbound) and
// runs also, when set: the caller's own record of the message (amojo's
// message id, so that delivery statuses find their way back). After the
// send the answer may make userID the customer's owner under a
// first-responder policy (ClaimByAnswer); a failed claim is logged, never
// the send's failure, since the message is on its way.
func (s *Service) SendAsManager(ctx context.Context, in *store.Integration, userID, channelID string, req messaging.SendRequest,
	also func(tx *gorm.DB, m *store.Message) error) (*store.Message, error) {
	if req.Author == nil {
		// The chat views name the manager, or amoCRM's automation.
		req.Author = &store.MessageAuthor{Kind: store.AuthorRobot, UserID: in.Type}
		if userID != "" {
			name, err := s.store.CRMUserName(ctx, in.ID, userID)
			if err != nil {
				// A message is worth sending without its writer's name.
				s.log.Warn("amocrm: manager name", "integration_id", in.ID, "user_id", userID, "err", err)
			}
			req.Author = &store.MessageAuthor{Kind: store.AuthorCRM, UserID: userID, Name: name}
		}
	}
	req.OnStored = func(tx *gorm.DB, m *store.Message) error {
		if err := routing.ClaimOutbound(tx, in.ID, m.ChannelID, m.ContactID); err != nil {
			return err
		}
		// The note of the message names its writer (outbound.go), and
		// so do its echoes in the channel's other CRMs.
		if err := routing.MarkOrigin(tx, in.ID, m.ID, userID); err != nil {
			return err
		}
		if also != nil {
			return also(tx, m)
		}
		return nil
	}
	m, err := s.msg.Send(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, channelID, req)
	if err != nil {
		return nil, err
	}
	if userID != "" {
		if err := s.ClaimByAnswer(ctx, in, channelID, m.ContactID, userID); err != nil {
			s.log.Error("amocrm: first responder claim", "integration_id", in.ID, "channel_id", channelID,
				"contact_id", m.ContactID, "user_id", userID, "err", err)
		}
	}
	return m, nil
}
