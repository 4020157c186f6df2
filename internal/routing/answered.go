package routing

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// JobAnswered tells a CRM that a customer whose waiting it was told of
// (notify.go) no longer waits: someone answered, from anywhere (a CRM's
// card or chat, an automation, the API, the cabinet, the messenger's own
// app). One job per answer that ends an armed waiting period.
const JobAnswered = "crm.notify.answered"

// Answerer is what a CRM implements when its notices outlive the waiting
// they announce: amoCRM's are tasks, which stay open until closed, so it
// closes them; Bitrix24's are notifications in the user's feed, which
// need no closing, and it does not implement this. Answered is called
// after the dialog's waiting period ended; dialog is the dialog as it is
// now (it may wait again, in a newer period whose notices must stay). It
// must be idempotent: a retried job calls it again. d.Binding is nil when
// the channel was unbound since. Errors are classified like Mirror's.
type Answerer interface {
	Answered(ctx context.Context, d *Delivery, dialog *store.DialogView) error
}

// answeredJob is JobAnswered's payload.
type answeredJob struct {
	IntegrationID string `json:"integration_id"`
	ChannelID     string `json:"channel_id"`
	DialogID      string `json:"dialog_id"`
}

// answeredKey runs a dialog's answered jobs one at a time, so two of them
// (the answer's and a notice's that crossed it) never close the same
// reminder side by side.
func answeredKey(dialogID string) string { return "answered:" + dialogID }

// answers says whether a CRM of this type hears of answers.
func (r *Router) answers(typ string) bool {
	_, ok := r.connectors[typ].(Answerer)
	return ok
}

// enqueueAnswered queues the answered job of a dialog.
func enqueueAnswered(tx *gorm.DB, workspaceID string, p answeredJob) error {
	_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobAnswered, WorkspaceID: workspaceID, Lane: p.ChannelID, Key: answeredKey(p.DialogID),
		Payload: p, MaxAttempts: 50})
	if err != nil {
		return fmt.Errorf("routing: enqueue answered: %w", err)
	}
	return nil
}

// answerEnds runs in the transaction that stores an answer, before the
// dialog stops waiting: when the dialog waits in a period whose notices
// were armed (they may have gone out, or be going out now), the CRM hears
// of the answer once the transaction commits.
func (r *Router) answerEnds(tx *gorm.DB, b *store.StatedBinding, k store.DialogKey) error {
	if b.IntegrationState == store.IntegrationUninstalled || !r.answers(b.IntegrationType) {
		return nil
	}
	id, err := store.ArmedDialog(tx, k)
	if err != nil || id == "" {
		return err
	}
	return enqueueAnswered(tx, b.WorkspaceID, answeredJob{IntegrationID: b.IntegrationID, ChannelID: k.ChannelID, DialogID: id})
}

// NoReplyNeeded stops a dialog waiting without an answer (an operator
// decided none is needed) and returns it; when its waiting had been armed
// for notices, the CRM hears of it as of an answer (its reminders are
// withdrawn), in the same transaction.
func (r *Router) NoReplyNeeded(ctx context.Context, scope store.Scope, id string) (*store.DialogView, error) {
	return r.store.DialogNoReplyNeededThen(ctx, scope, id, func(tx *gorm.DB, was *store.Dialog) error {
		if was.ArmedPeriod() == nil {
			return nil
		}
		// A CRM without reminders to withdraw finds nothing to do in it.
		return enqueueAnswered(tx, was.WorkspaceID, answeredJob{IntegrationID: was.IntegrationID, ChannelID: was.ChannelID, DialogID: was.ID})
	})
}

// answeredMeanwhile follows a notice that went out for a period that
// ended while it was being delivered (its mark found the dialog no longer
// waiting then): the answer's own job may have run before the CRM
// recorded the notice, so another one goes after it.
func (r *Router) answeredMeanwhile(ctx context.Context, st *store.Store, w *noticeWork, n Notice) error {
	if _, ok := w.notifier.(Answerer); !ok {
		return nil
	}
	d, err := st.GetDialog(ctx, store.All, n.Dialog.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if p := d.ArmedPeriod(); p != nil && p.Equal(*n.Dialog.NotifiedSince) {
		return nil // still waiting in that period: marked before, not answered
	}
	return st.Tx(ctx, func(tx *gorm.DB) error {
		return enqueueAnswered(tx, w.in.WorkspaceID, answeredJob{IntegrationID: w.in.ID, ChannelID: w.channel.ID, DialogID: d.ID})
	})
}

// handleAnswered hands an answer to the CRM. An uninstalled integration
// has nothing left to close with; one that cannot work now parks it.
func (r *Router) handleAnswered(ctx context.Context, j *queue.Job) error {
	var p answeredJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	in, conn, err := r.integration(ctx, p.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	a, ok := conn.(Answerer)
	if !ok {
		return nil
	}
	if run, err := workable(in); !run {
		return err
	}
	d, err := r.store.GetDialog(ctx, store.All, p.DialogID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ch, err := r.store.GetChannel(ctx, store.All, p.ChannelID)
	if err != nil {
		return err
	}
	b, err := r.store.BindingOf(ctx, in.ID, ch.ID)
	if errors.Is(err, store.ErrNotFound) {
		b, err = nil, nil
	}
	if err != nil {
		return err
	}
	err = a.Answered(ctx, &Delivery{Integration: in, Binding: b, Channel: ch, Contact: d.Contact, Job: j}, d)
	if errors.Is(err, ErrParked) {
		return queue.RetryAfter(parkDelay, err)
	}
	return err
}
