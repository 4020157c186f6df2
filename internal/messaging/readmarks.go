package messaging

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// markReadJob asks to tell the messenger the business read a customer's
// messages on a channel. It names the customer, not a message: by the time
// it runs the newest inbound message is the one to mark.
type markReadJob struct {
	ChannelID string `json:"channel_id"`
	ContactID string `json:"contact_id"`
}

func markReadKey(channelID, contactID string) string {
	return "read:" + channelID + ":" + contactID
}

// EnqueueMarkRead queues, in tx, the read mark for a customer's newest
// inbound message on a channel: a person answered them or opened their
// dialog. Running it twice is harmless (an already marked message is
// skipped), so callers need not check first.
func EnqueueMarkRead(tx *gorm.DB, workspaceID, channelID, contactID string) error {
	_, err := queue.Enqueue(tx, queue.NewJob{
		Kind: JobMarkRead, WorkspaceID: workspaceID, Lane: channelID,
		Key:     markReadKey(channelID, contactID),
		Payload: markReadJob{ChannelID: channelID, ContactID: contactID},
	})
	if err != nil {
		return fmt.Errorf("messaging: queue read mark: %w", err)
	}
	return nil
}

// MarkReadSeen queues the read mark when a person looks at a customer's
// dialog (the cabinet's shared chat). The log is refreshed while it is
// open, so the job is queued only while the newest inbound message is
// still unmarked.
func (s *Service) MarkReadSeen(ctx context.Context, workspaceID, channelID, contactID string) error {
	m, err := s.store.LatestInbound(ctx, channelID, contactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Status == string(channel.StatusRead) {
		return nil
	}
	err = s.store.Tx(ctx, func(tx *gorm.DB) error {
		return EnqueueMarkRead(tx, workspaceID, channelID, contactID)
	})
	if err != nil {
		return err
	}
	s.notify()
	return nil
}

// handleMarkRead sends the read mark. Messengers without read marks, a
// customer who never wrote, and a message already marked are no work.
func (s *Service) handleMarkRead(ctx context.Context, j *queue.Job) error {
	var p markReadJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	ch, err := s.store.GetChannel(ctx, store.All, p.ChannelID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	prov, ok := s.registry.ByType(channel.Type(ch.Type))
	if !ok || prov.Reads == nil || ch.State != store.ChannelActive {
		return nil
	}
	m, err := s.store.LatestInbound(ctx, ch.ID, p.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Status == string(channel.StatusRead) || m.ExternalID == nil {
		return nil // marked by an earlier job; WhatsApp marks all before it too
	}
	creds, err := s.store.Credentials(ch)
	if err != nil {
		return queue.Permanent(err)
	}
	if err := prov.Reads.MarkRead(ctx, creds, *m.ExternalID); err != nil {
		var se *channel.SendError
		if errors.As(err, &se) && se.Outcome != channel.OutcomeRetry {
			// Meta refuses (too old a message, blocked user): nothing a
			// retry changes, and the customer's ticks are only cosmetic.
			s.log.Info("read mark refused", "channel_id", ch.ID, "message_id", m.ID, "reason", se.Err.String())
			return nil
		}
		return err
	}
	return queue.Finish(ctx, s.store, j, func(st *store.Store) error {
		_, err := st.MarkInboundRead(ctx, m.ID, store.Now())
		return err
	})
}
