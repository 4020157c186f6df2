package amocrm

import (
	"context"
	"errors"
	"strconv"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// JobAssign makes the customer's owner, as routing recorded it (a first
// responder's claim), the responsible user of the customer's lead, with
// the queue's retries: the answer that claimed the customer is not held
// up by amoCRM, and an account that is down gets the change later.
const JobAssign = "amocrm.assign"

type assignJob struct {
	IntegrationID string `json:"integration_id"`
	BindingID     string `json:"binding_id"`
	ContactID     string `json:"contact_id"`
}

// enqueueAssign queues the lead's reassignment in tx; the jobs of one
// customer share a key, so they run in order.
func enqueueAssign(tx *gorm.DB, b *store.ChannelBinding, contactID string) error {
	_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobAssign, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID, Key: "amoassign:" + b.ID + ":" + contactID,
		Payload: assignJob{IntegrationID: b.IntegrationID, BindingID: b.ID, ContactID: contactID}, MaxAttempts: 20})
	return err
}

// ClaimByAnswer is for the paths where an amoCRM user answers a customer
// (SendAsManager: amojo's outgoing hook, the widget's chat window): under a first_responder policy the first group member to answer
// becomes the dialog's owner and, through JobAssign, the lead's
// responsible user. Any other policy, a non-member or a later answerer
// changes nothing. The answer has gone out whatever this returns; calling
// it again for the winner applies a claim that failed to apply.
func (s *Service) ClaimByAnswer(ctx context.Context, in *store.Integration, channelID, contactID, userID string) error {
	b, err := s.store.BindingOf(ctx, in.ID, channelID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	applied, err := routing.TakeByAnswer(ctx, s.store, b, contactID, userID, func(tx *gorm.DB) error {
		return enqueueAssign(tx, b, contactID)
	})
	if err != nil || !applied {
		return err
	}
	s.log.Info("amocrm: first responder owns the customer", "integration_id", in.ID, "binding_id", b.ID, "contact_id", contactID, "user_id", userID)
	s.notify()
	return nil
}

// handleAssign sets the lead's responsible_user_id to the owner routing
// recorded. Nothing to do while the customer has no owner or no lead: a
// lead created later gets its owner when it is created.
func (s *Service) handleAssign(ctx context.Context, j *queue.Job) error {
	var p assignJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	in, err := s.store.GetIntegration(ctx, store.All, p.IntegrationID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && in.State == store.IntegrationUninstalled) {
		return nil
	}
	if err != nil {
		return err
	}
	if !routing.Live(in) {
		return Classify(ErrNeedsReauth)
	}
	owner, err := s.store.OwnerOf(ctx, p.BindingID, p.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(owner)
	if err != nil {
		return queue.Permanent(err)
	}
	lead, err := s.remoteInt(ctx, in.ID, linkLead, p.BindingID+":"+p.ContactID)
	if err != nil || lead == 0 {
		return err
	}
	return Classify(s.API(in).UpdateLead(ctx, lead, LeadPatch{ResponsibleUserID: uid}))
}
