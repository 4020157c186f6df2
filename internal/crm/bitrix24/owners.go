package bitrix24

import (
	"context"
	"errors"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// JobAssign gives a customer's CRM record to the customer's owner as
// routing recorded it (a first responder's claim), with the queue's
// retries: the answer that claimed the customer is not held up by the
// portal, and a portal that is down gets the change later.
const JobAssign = "bitrix24.assign"

type assignJob struct {
	IntegrationID string `json:"integration_id"`
	BindingID     string `json:"binding_id"`
	ContactID     string `json:"contact_id"`
}

// enqueueAssign queues the record's reassignment in tx. Jobs of one
// customer share a key, so they run in order.
func enqueueAssign(tx *gorm.DB, b *store.ChannelBinding, contactID string) error {
	_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobAssign, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID, Key: "b24assign:" + b.ID + ":" + contactID,
		Payload: assignJob{IntegrationID: b.IntegrationID, BindingID: b.ID, ContactID: contactID}, MaxAttempts: 20})
	return err
}

// claimByAnswer is called after CRM user userID sent the customer a
// message through channelID (the card tab): under a first_responder
// policy the first group member to answer becomes the owner of the
// dialog and, through JobAssign, of the record. The send has happened
// whatever this does, so a failure is logged; the winner's next answer
// applies the claim again, because the dialog's owner shows whether it
// was applied.
func (s *Service) claimByAnswer(ctx context.Context, in *store.Integration, channelID, contactID, userID string) {
	logErr := func(what string, err error) {
		s.log.Error("bitrix24: first responder claim: "+what, "integration_id", in.ID, "channel_id", channelID,
			"contact_id", contactID, "user_id", userID, "err", err)
	}
	b, err := s.store.BindingOf(ctx, in.ID, channelID)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		logErr("binding", err)
		return
	}
	if b.Mode != ModeCRM {
		return
	}
	applied, err := routing.TakeByAnswer(ctx, s.store, b, contactID, userID, func(tx *gorm.DB) error {
		return enqueueAssign(tx, b, contactID)
	})
	if err != nil {
		logErr("claim", err)
		return
	}
	if !applied {
		return
	}
	s.log.Info("bitrix24: first responder owns the customer", "integration_id", in.ID, "binding_id", b.ID, "contact_id", contactID, "user_id", userID)
	s.msg.Notify()
}

// handleAssign sets the customer's record's ASSIGNED_BY_ID to the owner
// routing recorded. Nothing to do while the customer has no owner or no
// record yet: a record created later gets its owner when it is created.
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
		return s.classify(ErrNeedsReauth)
	}
	b, err := s.store.GetBinding(ctx, p.BindingID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // unbound since
	}
	if err != nil {
		return err
	}
	owner, err := s.store.OwnerOf(ctx, b.ID, p.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	entity, link := crmEntity(b)
	id, err := s.store.RemoteOf(ctx, in.ID, link, b.ID+":"+p.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = s.client.Call(ctx, in.ID, "crm."+entity+".update", map[string]any{"id": id, "fields": map[string]any{"ASSIGNED_BY_ID": owner}}, nil)
	return s.classify(err)
}
