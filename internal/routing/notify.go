package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// Unanswered-customer notices (seed: Wazzup's notification chat). A
// customer's first unanswered message tells the dialog's owner, or the
// owner group when there is none, in the CRM (JobNotify); if nobody
// answers or marks "no reply needed" within the integration's
// notify_after_seconds, everyone with access to the channel is told once
// (JobEscalate). Both are queue jobs enqueued in the ingest transaction,
// so they survive restarts and run once across instances; the escalation
// is a job delayed to its deadline, which checks when it fires that the
// dialog still waits in the same period.
const (
	JobNotify   = "crm.notify"
	JobEscalate = "crm.notify.escalate"
)

// Notice kinds.
const (
	// NoticeNew: a customer began to wait (the period's first message).
	NoticeNew = "new"
	// NoticeEscalation: the customer has waited notify_after_seconds.
	NoticeEscalation = "escalation"
)

// Notice is one notification for a CRM to deliver to its users.
type Notice struct {
	Kind string
	// UserIDs are the CRM's user ids to tell: never empty, no repeats.
	UserIDs []string
	// Dialog is the waiting dialog with its customer; its CRMEntity names
	// the record when the connector has linked one.
	Dialog *store.DialogView
	// Message is the period's first unanswered message, for an excerpt;
	// nil when it cannot be read.
	Message *store.MessageView
	// Waited is how long the customer has waited (escalations).
	Waited time.Duration
}

// Notifier is what routing needs from a CRM to tell its users about a
// waiting customer. A Connector that also implements it gets the notices;
// one that does not simply has none. Its errors are classified like
// Mirror's (ErrParked parks the notice).
type Notifier interface {
	Notify(ctx context.Context, d *Delivery, n Notice) error
}

// noticeJob is the payload of both notice kinds: the dialog, the waiting
// period (its waiting_since) and the message that began it.
type noticeJob struct {
	DialogID  string    `json:"dialog_id"`
	Since     time.Time `json:"since"`
	MessageID string    `json:"message_id"`
}

// errNotDue snoozes an escalation that fired before its deadline: a
// re-armed job (Resume) or a delay raised since the job was queued.
var errNotDue = errors.New("routing: escalation not due yet")

// EscalationKey is the queue key of a dialog's escalation timers. The
// timers of one dialog run in order and never side by side; a timer waits
// at the head of its key until due, which is why it shares the key with
// nothing else (tests wake a timer by it, see queue.Wake).
func EscalationKey(dialogID string) string { return "notify:" + dialogID }

// mirrorKey is the key enqueueMirror gives a binding's mirror jobs.
func mirrorKey(bindingID string) string { return "crm:" + bindingID }

// armNotices arms the notices of every dialog this customer message made
// wait, in the ingest transaction: at most one pair of jobs per waiting
// period (store.ArmDialogNotices), so a customer writing five messages in
// a row is announced once. A dialog that did not change (a branch not
// chosen, say) is not waiting anew and arms nothing.
func (r *Router) armNotices(tx *gorm.DB, ch *store.Channel, m *store.Message, bindings []store.StatedBinding) error {
	if m.Direction != store.Inbound || !wantsAnswer(m) {
		return nil
	}
	for i := range bindings {
		b := &bindings[i]
		if b.IntegrationState == store.IntegrationUninstalled {
			continue
		}
		k := store.DialogKey{WorkspaceID: b.WorkspaceID, IntegrationID: b.IntegrationID, ChannelID: ch.ID, ContactID: m.ContactID}
		arm, err := store.ArmDialogNotices(tx, k)
		if err != nil {
			return fmt.Errorf("routing: %w", err)
		}
		if arm == nil {
			continue
		}
		set, err := SettingsOf(&store.Integration{ID: b.IntegrationID, Settings: arm.IntegrationSettings})
		if err != nil {
			// Ingest must not fail on a setting; the timer re-reads it
			// when it fires and snoozes if the deadline is later.
			r.log.Warn("routing: notice delay from default", "integration_id", b.IntegrationID, "err", err)
			set.NotifyAfterSeconds = DefaultNotifyAfterSeconds
		}
		p := noticeJob{DialogID: arm.DialogID, Since: arm.WaitingSince, MessageID: m.ID}
		// The notice goes behind the mirror job just queued for this
		// binding, so it can link the record (or chat) the mirror creates
		// and name the owner a rotation picks. Elsewhere it stands alone.
		newKey := ""
		if b.Live() && (b.Mirror == "" || b.Mirror == MirrorEach) {
			newKey = mirrorKey(b.ID)
		}
		if _, err := queue.Enqueue(tx, queue.NewJob{Kind: JobNotify, WorkspaceID: b.WorkspaceID, Key: newKey,
			Payload: p, MaxAttempts: 50}); err != nil {
			return fmt.Errorf("routing: enqueue notice: %w", err)
		}
		due := arm.WaitingSince.Add(time.Duration(set.NotifyAfterSeconds) * time.Second)
		if _, err := queue.Enqueue(tx, queue.NewJob{Kind: JobEscalate, WorkspaceID: b.WorkspaceID, Key: EscalationKey(arm.DialogID),
			Payload: p, RunAt: due, MaxAttempts: 50}); err != nil {
			return fmt.Errorf("routing: enqueue escalation: %w", err)
		}
	}
	return nil
}

// EnqueueEscalation queues an escalation timer for the waiting period of
// the dialog that began at since, due at. armNotices queues the real ones;
// tests queue a second to prove a duplicated or retried timer tells
// nobody twice.
func EnqueueEscalation(tx *gorm.DB, workspaceID, dialogID string, since time.Time, messageID string, at time.Time) error {
	_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobEscalate, WorkspaceID: workspaceID, Key: EscalationKey(dialogID),
		Payload: noticeJob{DialogID: dialogID, Since: since, MessageID: messageID}, RunAt: at, MaxAttempts: 50})
	if err != nil {
		return fmt.Errorf("routing: enqueue escalation: %w", err)
	}
	return nil
}

// noticeWork is what both notice handlers load.
type noticeWork struct {
	dialog   *store.DialogView
	in       *store.Integration
	binding  *store.ChannelBinding
	channel  *store.Channel
	notifier Notifier
}

// load reads the dialog, integration and binding of a notice. A nil work
// with a nil error means there is nobody to notify any more (dialog,
// integration or binding gone, CRM without notices).
func (r *Router) load(ctx context.Context, p noticeJob) (*noticeWork, error) {
	d, err := r.store.GetDialog(ctx, store.All, p.DialogID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	in, conn, err := r.integration(ctx, d.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	n, ok := conn.(Notifier)
	if !ok {
		return nil, nil
	}
	b, err := r.store.BindingOf(ctx, in.ID, d.ChannelID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // unbound since
	}
	if err != nil {
		return nil, err
	}
	ch, err := r.store.GetChannel(ctx, store.All, d.ChannelID)
	if err != nil {
		return nil, err
	}
	return &noticeWork{dialog: d, in: in, binding: b, channel: ch, notifier: n}, nil
}

// handleNotify tells the owner (or group) that a customer began to wait.
// A dialog answered before the job ran (a parked integration coming back
// hours later) is past news and is dropped.
func (r *Router) handleNotify(ctx context.Context, j *queue.Job) error {
	var p noticeJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	w, err := r.load(ctx, p)
	if w == nil || err != nil {
		return err
	}
	if !w.dialog.WaitingSinceIs(p.Since) {
		return nil
	}
	if run, err := workable(w.in); !run {
		return err
	}
	users, err := r.ownerOrGroup(ctx, w)
	if err != nil {
		return err
	}
	return r.deliver(ctx, w, Notice{Kind: NoticeNew, UserIDs: users, Dialog: w.dialog, Message: r.noticeMessage(ctx, p.MessageID)})
}

// handleEscalate is the timer: when the customer still waits in the same
// period and it was not escalated yet, everyone with access to the channel
// is told, then the period is marked. The mark comes after the delivery:
// a crash in between repeats the notice (Bitrix24 replaces a notice with
// the same tag) rather than losing it; a retried or duplicated timer finds
// the mark and tells nobody.
func (r *Router) handleEscalate(ctx context.Context, j *queue.Job) error {
	var p noticeJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	w, err := r.load(ctx, p)
	if w == nil || err != nil {
		return err
	}
	if !w.dialog.WaitingSinceIs(p.Since) || w.dialog.EscalatedFor(p.Since) {
		return nil // answered, no reply needed, or told already
	}
	set, err := SettingsOf(w.in)
	if err != nil {
		r.log.Warn("routing: escalation delay from default", "integration_id", w.in.ID, "err", err)
		set.NotifyAfterSeconds = DefaultNotifyAfterSeconds
	}
	now := store.Now()
	if due := p.Since.Add(time.Duration(set.NotifyAfterSeconds) * time.Second); now.Before(due) {
		return queue.Snooze(due, errNotDue)
	}
	if run, err := workable(w.in); !run {
		return err
	}
	users, err := r.store.UsersWithAccess(ctx, w.in.ID, w.channel.ID)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		// Nobody has access configured: someone must still hear of it.
		if users, err = r.ownerOrGroup(ctx, w); err != nil {
			return err
		}
	}
	err = r.deliver(ctx, w, Notice{Kind: NoticeEscalation, UserIDs: users, Dialog: w.dialog,
		Message: r.noticeMessage(ctx, p.MessageID), Waited: now.Sub(p.Since)})
	if err != nil {
		return err
	}
	if _, err := r.store.MarkDialogEscalated(ctx, w.dialog.ID, p.Since); err != nil {
		return err
	}
	return nil
}

// deliver hands a notice to the CRM; nobody to tell is logged, not failed.
func (r *Router) deliver(ctx context.Context, w *noticeWork, n Notice) error {
	if len(n.UserIDs) == 0 {
		r.log.Warn("routing: nobody to notify of a waiting customer", "integration_id", w.in.ID, "dialog_id", w.dialog.ID, "kind", n.Kind)
		return nil
	}
	d := &Delivery{Integration: w.in, Binding: w.binding, Channel: w.channel, Contact: w.dialog.Contact}
	err := w.notifier.Notify(ctx, d, n)
	if errors.Is(err, ErrParked) {
		return queue.RetryAfter(parkDelay, err)
	}
	return err
}

// noticeMessage reads the message a notice quotes; a notice without an
// excerpt is better than none, so a failure is only logged.
func (r *Router) noticeMessage(ctx context.Context, id string) *store.MessageView {
	if id == "" {
		return nil
	}
	m, err := r.store.GetMessage(ctx, store.All, id)
	if err != nil {
		r.log.Warn("routing: message of a notice", "message_id", id, "err", err)
		return nil
	}
	return m
}

// ownerOrGroup is who hears of a new waiting customer: the dialog's owner;
// without one the binding's owner group; with no group (or nobody active
// in it) everyone with access to the channel; with nobody there either
// the user who installed the integration. A user the CRM deactivated is
// skipped.
func (r *Router) ownerOrGroup(ctx context.Context, w *noticeWork) ([]string, error) {
	users, err := r.store.CRMUsers(ctx, w.in.ID)
	if err != nil {
		return nil, err
	}
	inactive := map[string]bool{}
	for _, u := range users {
		if !u.Active {
			inactive[u.UserID] = true
		}
	}
	if o := w.dialog.OwnerUserID; o != "" && !inactive[o] {
		return []string{o}, nil
	}
	p, err := PolicyOf(w.binding)
	if err != nil {
		r.log.Warn("routing: owner group of a notice", "binding_id", w.binding.ID, "err", err)
	}
	if p.Owner != nil {
		var group []string
		for _, u := range p.Owner.Users {
			if u.UserID != "" && !inactive[u.UserID] && !slices.Contains(group, u.UserID) {
				group = append(group, u.UserID)
			}
		}
		if len(group) > 0 {
			return group, nil
		}
	}
	access, err := r.store.UsersWithAccess(ctx, w.in.ID, w.channel.ID)
	if err != nil {
		return nil, err
	}
	if len(access) > 0 {
		return access, nil
	}
	if w.in.InstalledBy != "" {
		return []string{w.in.InstalledBy}, nil
	}
	return nil, nil
}
