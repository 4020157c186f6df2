package routing

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// JobEnsureRecord makes sure a customer of a binding that batches its
// comments (mirror hourly, daily or none) has a CRM record and an owner
// now: managers see the new lead at once and the dialog shows owner and
// record, while only the timeline comments wait for the batch (as Wazzup
// does). It is queued on the first message of a waiting period, ahead of
// that period's notice on the binding's notice key, so the notice can
// link the record.
const JobEnsureRecord = "crm.record.ensure"

// RecordEnsurer is what a CRM implements to create a customer's contact
// and record (with the owner the binding's policy picks) without writing
// any message: the batched modes' first step. A connector without it
// creates records with the first batch.
type RecordEnsurer interface {
	// EnsureRecord creates what the customer lacks in the CRM (contact,
	// record; a new record where the policy replaces a closed one) and
	// links it to the dialog; with everything in place it should cost no
	// call. Errors are classified like Mirror's. The links are the job's
	// last step: d.Job ends (queue.Done) in their commit, while a mark
	// that makes a creation's lost answer detectable is committed on its
	// own before the CRM call.
	EnsureRecord(ctx context.Context, d *Delivery, contact *store.Contact) error
}

type ensureJob struct {
	BindingID string `json:"binding_id"`
	ContactID string `json:"contact_id"`
}

// enqueueEnsure queues the record job of a customer of a binding in a
// batched mode (other bindings create records as they mirror): key is the
// binding's notice key, so it runs before the notice queued after it.
func enqueueEnsure(tx *gorm.DB, b *store.StatedBinding, contactID, key string) error {
	if !b.Live() || MirrorModeOf(&b.ChannelBinding) == MirrorEach {
		return nil
	}
	_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobEnsureRecord, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID, Key: key,
		Payload: ensureJob{BindingID: b.ID, ContactID: contactID}, MaxAttempts: 50})
	if err != nil {
		return fmt.Errorf("routing: enqueue record: %w", err)
	}
	return nil
}

func (r *Router) handleEnsureRecord(ctx context.Context, j *queue.Job) error {
	var p ensureJob
	b, err := r.jobBinding(ctx, j, &p, &p.BindingID)
	if b == nil {
		return err // nil when unbound since
	}
	if MirrorModeOf(b) == MirrorEach {
		return nil // switched to each since: the mirror makes the record
	}
	in, conn, err := r.integration(ctx, b.IntegrationID)
	if err != nil {
		return err
	}
	re, ok := conn.(RecordEnsurer)
	if !ok {
		return nil
	}
	if run, err := workable(in); !run {
		return err
	}
	ch, err := r.store.GetChannel(ctx, store.All, b.ChannelID)
	if err != nil {
		return err
	}
	ct, err := r.store.ContactByID(ctx, p.ContactID)
	if err != nil {
		return err
	}
	err = re.EnsureRecord(ctx, &Delivery{Integration: in, Binding: b, Channel: ch, Contact: ct, Job: j}, ct)
	if errors.Is(err, ErrParked) {
		return queue.RetryAfter(parkDelay, err)
	}
	return waitForCRM(j, err)
}
