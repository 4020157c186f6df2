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
// is a job delayed to its deadline. When a job runs it tells only of
// periods that are still the dialog's current one (armed at the same
// waiting_since, still waiting, not yet told), so an answer or "no reply
// needed" in the meantime leaves it nothing to do.
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
	// Dialog is the waiting dialog with its customer; its NotifiedSince
	// (= WaitingSince) is the waiting period told of, its CRMEntity names
	// the record when the connector has linked one.
	Dialog *store.DialogView
	// Message is the period's first unanswered message, for an excerpt;
	// nil when it cannot be read.
	Message *store.MessageView
	// Waited is how long the customer has waited (escalations).
	Waited time.Duration
}

// Notifier is what routing needs from a CRM to tell its users about
// waiting customers. A Connector that also implements it gets the notices;
// one that does not simply has none. ns are notices of one binding (up to
// MaxNotices), to be sent in as few calls as the CRM allows; an error
// means none may have gone out, and all are sent again later (a CRM should
// make a repeated notice replace the earlier one where it can). Errors are
// classified like Mirror's (ErrParked parks the notices).
type Notifier interface {
	Notify(ctx context.Context, d *Delivery, ns []Notice) error
}

// MaxNotices bounds the notices one job carries.
const MaxNotices = 50

// noticeJob is the payload of both notice kinds. A job is queued per
// waiting period but carries every period of its binding that is due, so
// the later jobs of a burst find nothing left; DialogID names the dialog
// whose period queued it (a timer that finds nothing due checks whether
// that one's deadline moved later).
type noticeJob struct {
	IntegrationID string `json:"integration_id"`
	ChannelID     string `json:"channel_id"`
	DialogID      string `json:"dialog_id"`
}

// errNotDue snoozes an escalation timer that fired before its deadline:
// a re-armed job (Resume) or a delay raised since it was queued.
var errNotDue = errors.New("routing: escalation not due yet")

// EscalationKey is the queue key of a binding's escalation timers. The
// timers of a binding run in order and never side by side (each carries
// every due period of the binding, so two at once would tell twice); a
// timer waits at the head of its key until due, and those behind it are
// due later. Tests wake the timers by it (queue.Wake).
func EscalationKey(bindingID string) string { return "notify:" + bindingID }

// noticeKey is the key of a binding's "new message" notices when no
// mirror job runs per message: one at a time, for the same reason.
func noticeKey(bindingID string) string { return "notice:" + bindingID }

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
		err := armBinding(tx, &bindings[i], ch.ID, m.ContactID, func(err error) {
			// Ingest must not fail on a setting; the timer re-reads it
			// when it fires and snoozes if the deadline is later.
			r.log.Warn("routing: notice delay from default", "integration_id", bindings[i].IntegrationID, "err", err)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// armBinding arms the notices of one binding's dialog with a customer if
// it began to wait (see armNotices), after the binding's mirror job was
// queued. badSettings hears of unreadable integration settings (the delay
// falls back to the default); nil makes them an error.
func armBinding(tx *gorm.DB, b *store.StatedBinding, channelID, contactID string, badSettings func(error)) error {
	if b.IntegrationState == store.IntegrationUninstalled {
		return nil
	}
	k := store.DialogKey{WorkspaceID: b.WorkspaceID, IntegrationID: b.IntegrationID, ChannelID: channelID, ContactID: contactID}
	arm, err := store.ArmDialogNotices(tx, k)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	if arm == nil {
		return nil
	}
	set, err := SettingsOf(&store.Integration{ID: b.IntegrationID, Settings: arm.IntegrationSettings})
	if err != nil {
		if badSettings == nil {
			return err
		}
		badSettings(err)
		set.NotifyAfterSeconds = DefaultNotifyAfterSeconds
	}
	p := noticeJob{IntegrationID: b.IntegrationID, ChannelID: channelID, DialogID: arm.DialogID}
	// The notice goes behind the mirror job just queued for this
	// binding, so it can link the record (or chat) the mirror creates
	// and name the owner a rotation picks.
	key := noticeKey(b.ID)
	if b.Live() && (b.Mirror == "" || b.Mirror == MirrorEach) {
		key = mirrorKey(b.ID)
	}
	// In the batched modes nothing else makes the record now: a new
	// period makes sure it exists (and has its owner) before the notice.
	if err := enqueueEnsure(tx, b, contactID, key); err != nil {
		return err
	}
	if _, err := queue.Enqueue(tx, queue.NewJob{Kind: JobNotify, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID, Key: key,
		Payload: p, MaxAttempts: 50}); err != nil {
		return fmt.Errorf("routing: enqueue notice: %w", err)
	}
	due := arm.WaitingSince.Add(time.Duration(set.NotifyAfterSeconds) * time.Second)
	if _, err := queue.Enqueue(tx, queue.NewJob{Kind: JobEscalate, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID, Key: EscalationKey(b.ID),
		Payload: p, RunAt: due, MaxAttempts: 50}); err != nil {
		return fmt.Errorf("routing: enqueue escalation: %w", err)
	}
	return nil
}

// EnqueueEscalation queues an escalation timer of a binding, due at.
// armNotices queues the real ones; tests queue another to prove a
// duplicated or retried timer tells nobody twice.
func EnqueueEscalation(tx *gorm.DB, b *store.ChannelBinding, at time.Time) error {
	_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobEscalate, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID, Key: EscalationKey(b.ID),
		Payload: noticeJob{IntegrationID: b.IntegrationID, ChannelID: b.ChannelID}, RunAt: at, MaxAttempts: 50})
	if err != nil {
		return fmt.Errorf("routing: enqueue escalation: %w", err)
	}
	return nil
}

// noticeWork is what both notice handlers load: the binding and what it
// takes to decide who hears of its customers.
type noticeWork struct {
	in       *store.Integration
	binding  *store.ChannelBinding
	channel  *store.Channel
	notifier Notifier
	// inactive are the CRM's users it deactivated.
	inactive map[string]bool
	// access are the active users with access to the channel.
	access []string
}

// load reads the binding of a notice job. A nil work with a nil error
// means there is nobody to notify any more (integration or binding gone,
// CRM without notices).
func (r *Router) load(ctx context.Context, p noticeJob) (*noticeWork, error) {
	in, conn, err := r.integration(ctx, p.IntegrationID)
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
	b, err := r.store.BindingOf(ctx, in.ID, p.ChannelID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // unbound since
	}
	if err != nil {
		return nil, err
	}
	ch, err := r.store.GetChannel(ctx, store.All, p.ChannelID)
	if err != nil {
		return nil, err
	}
	return &noticeWork{in: in, binding: b, channel: ch, notifier: n}, nil
}

// recipients reads, once per job, the users a notice may go to.
func (r *Router) recipients(ctx context.Context, w *noticeWork) error {
	users, err := r.store.CRMUsers(ctx, w.in.ID)
	if err != nil {
		return err
	}
	w.inactive = map[string]bool{}
	for _, u := range users {
		if !u.Active {
			w.inactive[u.UserID] = true
		}
	}
	w.access, err = r.store.UsersWithAccess(ctx, w.in.ID, w.channel.ID)
	return err
}

// handleNotify tells the owners (or groups) that customers began to wait:
// every armed period of the binding not yet announced, in one delivery,
// then marks them. A dialog answered before the job ran (a parked
// integration coming back hours later) is no longer listed: past news is
// dropped.
func (r *Router) handleNotify(ctx context.Context, j *queue.Job) error {
	var p noticeJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	w, err := r.load(ctx, p)
	if w == nil || err != nil {
		return err
	}
	// Read before the dialogs: a notice job seen committed means its
	// dialog's period is (one transaction arms both), so a run that
	// announces everything due covers the notice jobs behind it.
	fs, err := queue.Followers(ctx, r.store.DB.Gorm, j, MaxNotices)
	if err != nil {
		return err
	}
	ds, err := r.store.DialogsToAnnounce(ctx, w.in.ID, w.channel.ID, MaxNotices)
	if err != nil {
		return err
	}
	// With MaxNotices listed more may be due: the jobs behind carry on.
	var covered []int64
	for _, f := range fs {
		var fp noticeJob
		if len(ds) < MaxNotices && f.Decode(&fp) == nil && fp.IntegrationID == p.IntegrationID && fp.ChannelID == p.ChannelID {
			covered = append(covered, f.ID)
		}
	}
	// The job, and those it covered, end in the commit of the marks.
	end := func(tx *gorm.DB) error {
		if err := queue.Absorb(tx, j, covered); err != nil {
			return err
		}
		return queue.Done(tx, j)
	}
	if len(ds) == 0 {
		return r.store.Tx(ctx, end)
	}
	if run, err := workable(w.in); !run {
		return err
	}
	if err := r.recipients(ctx, w); err != nil {
		return err
	}
	ns := make([]Notice, 0, len(ds))
	for i := range ds {
		ns = append(ns, Notice{Kind: NoticeNew, UserIDs: r.ownerOrGroup(w, &ds[i]), Dialog: &ds[i], Message: r.noticeMessage(ctx, &ds[i])})
	}
	return waitForCRM(j, r.deliver(ctx, w, ns, markAnnounced, end))
}

// handleEscalate is the timer: every armed period of the binding that has
// waited notify_after_seconds and was not escalated yet is told to
// everyone with access to the channel, then marked. The mark comes after
// the delivery: a crash in between repeats the notice (Bitrix24 replaces
// a notice with the same tag) rather than losing it; a retried or
// duplicated timer finds the marks and tells nobody. A period answered
// or marked "no reply needed" no longer waits and is not listed. The
// timers queued behind it whose dialogs then have nothing left to tell end
// in the same commit (coveredTimers): a backlog of due timers is told in
// runs of MaxNotices, not one run per timer.
func (r *Router) handleEscalate(ctx context.Context, j *queue.Job) error {
	var p noticeJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	w, err := r.load(ctx, p)
	if w == nil || err != nil {
		return err
	}
	set, err := SettingsOf(w.in)
	if err != nil {
		r.log.Warn("routing: escalation delay from default", "integration_id", w.in.ID, "err", err)
		set.NotifyAfterSeconds = DefaultNotifyAfterSeconds
	}
	delay := time.Duration(set.NotifyAfterSeconds) * time.Second
	now := store.Now()
	// The timers behind this one, which its run may cover (see
	// coveredTimers); none of them can start while this one runs.
	fs, err := queue.Followers(ctx, r.store.DB.Gorm, j, escalationFollowers)
	if err != nil {
		return err
	}
	ds, err := r.store.DialogsToEscalate(ctx, w.in.ID, w.channel.ID, now.Add(-delay), MaxNotices)
	if err != nil {
		return err
	}
	// The job, and the timers it covered, end in the commit of the marks,
	// unless it has to wait; a waiting job still ends those it covered.
	var due time.Time
	end := func(tx *gorm.DB) error {
		st := r.store.InTx(tx)
		var err error
		due, err = r.escalationDue(ctx, st, p.DialogID, now, delay)
		if err != nil {
			return err
		}
		covered, err := coveredTimers(ctx, st, p, fs, now, len(ds) < MaxNotices)
		if err != nil {
			return err
		}
		if err := queue.Absorb(tx, j, covered); err != nil {
			return err
		}
		if !due.IsZero() {
			return nil
		}
		return queue.Done(tx, j)
	}
	if len(ds) == 0 {
		err = r.store.Tx(ctx, end)
	} else {
		if run, err := workable(w.in); !run {
			return err
		}
		if err := r.recipients(ctx, w); err != nil {
			return err
		}
		ns := make([]Notice, 0, len(ds))
		for i := range ds {
			users := w.access
			if len(users) == 0 {
				// Nobody has access configured: someone must still hear.
				users = r.ownerOrGroup(w, &ds[i])
			}
			ns = append(ns, Notice{Kind: NoticeEscalation, UserIDs: users, Dialog: &ds[i],
				Message: r.noticeMessage(ctx, &ds[i]), Waited: now.Sub(*ds[i].NotifiedSince)})
		}
		err = r.deliver(ctx, w, ns, markEscalated, end)
	}
	if err != nil {
		return err
	}
	if !due.IsZero() {
		return queue.Snooze(due, errNotDue)
	}
	return nil
}

// escalationFollowers bounds the timers behind a running one that its run
// reads to cover. More than MaxNotices: the timers of dialogs answered in
// the meantime (most of a busy binding's) are covered too, so a backlog of
// them ends in a few runs rather than one run each.
const escalationFollowers = 4 * MaxNotices

// coveredTimers picks, among the timers fs queued behind the running one
// (of the binding of p), those whose work is done once this run's marks
// commit; st is the transaction of that commit, after the marks. A timer
// of a dialog is covered when its dialog has nothing left to escalate: its
// period was told (by this run or an earlier one), or it no longer waits
// in it. A timer whose dialog still waits untold is kept, due or not: not
// due, it must still fire at its time; due but beyond the MaxNotices this
// run listed, it tells it. A timer of no dialog (EnqueueEscalation) is
// covered when it is due and this run listed everything due (all), as its
// own run now would. A new waiting period arms a timer of its own, so
// covering the timer of a dialog's earlier period leaves none untimed.
func coveredTimers(ctx context.Context, st *store.Store, p noticeJob, fs []*queue.Job, now time.Time, all bool) ([]int64, error) {
	var covered, withDialog []int64
	var dialogs []string
	dialogOf := map[int64]string{}
	for _, f := range fs {
		var fp noticeJob
		if f.Decode(&fp) != nil || fp.IntegrationID != p.IntegrationID || fp.ChannelID != p.ChannelID {
			continue // not this binding's: its own run decides
		}
		if fp.DialogID == "" {
			if all && !f.RunAt.After(now) {
				covered = append(covered, f.ID)
			}
			continue
		}
		withDialog = append(withDialog, f.ID)
		dialogOf[f.ID] = fp.DialogID
		dialogs = append(dialogs, fp.DialogID)
	}
	left, err := st.DialogsLeftToEscalate(ctx, dialogs)
	if err != nil {
		return nil, err
	}
	for _, id := range withDialog {
		if !left[dialogOf[id]] {
			covered = append(covered, id)
		}
	}
	return covered, nil
}

// escalationDue is when the timer's own dialog's period falls due, zero if
// it has (or is told, or gone): the period that queued the timer may not be
// due yet, its deadline moved later (a raised delay) or the timer re-armed
// early (Resume). The timer waits for it rather than leave it untold.
func (r *Router) escalationDue(ctx context.Context, st *store.Store, dialogID string, now time.Time, delay time.Duration) (time.Time, error) {
	if dialogID == "" {
		return time.Time{}, nil
	}
	d, err := st.GetDialog(ctx, store.All, dialogID)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if since := d.ArmedPeriod(); since != nil && !d.EscalatedFor(*since) {
		if due := since.Add(delay); now.Before(due) {
			return due, nil
		}
	}
	return time.Time{}, nil
}

// dialogMark records in st that a dialog's period since was told; false
// when it no longer waits since then or was marked already.
type dialogMark func(ctx context.Context, st *store.Store, dialogID string, since time.Time) (bool, error)

func markAnnounced(ctx context.Context, st *store.Store, dialogID string, since time.Time) (bool, error) {
	return st.MarkDialogAnnounced(ctx, dialogID, since)
}

func markEscalated(ctx context.Context, st *store.Store, dialogID string, since time.Time) (bool, error) {
	return st.MarkDialogEscalated(ctx, dialogID, since)
}

// deliver hands notices to the CRM and marks each period told (the
// period is the armed one, NotifiedSince, which the store's lists only
// return while it is the dialog's current waiting period). A notice with
// nobody to tell is logged and marked, not failed. The marks, and what
// they lead to, commit together with end (the job's end).
func (r *Router) deliver(ctx context.Context, w *noticeWork, ns []Notice, mark dialogMark, end func(tx *gorm.DB) error) error {
	send := make([]Notice, 0, len(ns))
	for _, n := range ns {
		if len(n.UserIDs) == 0 {
			r.log.Warn("routing: nobody to notify of a waiting customer", "integration_id", w.in.ID, "dialog_id", n.Dialog.ID, "kind", n.Kind)
			continue
		}
		send = append(send, n)
	}
	if len(send) > 0 {
		err := w.notifier.Notify(ctx, &Delivery{Integration: w.in, Binding: w.binding, Channel: w.channel}, send)
		if errors.Is(err, ErrParked) {
			return queue.RetryAfter(parkDelay, err)
		}
		if err != nil {
			return err
		}
	}
	return r.store.Tx(ctx, func(tx *gorm.DB) error {
		st := r.store.InTx(tx)
		for _, n := range ns {
			marked, err := mark(ctx, st, n.Dialog.ID, *n.Dialog.NotifiedSince)
			if err != nil {
				return err
			}
			if !marked && len(n.UserIDs) > 0 {
				if err := r.answeredMeanwhile(ctx, st, w, n); err != nil {
					return err
				}
			}
		}
		return end(tx)
	})
}

// noticeMessage reads the message that began the dialog's waiting period,
// for an excerpt; a notice without one is better than none, so a failure
// is only logged.
func (r *Router) noticeMessage(ctx context.Context, d *store.DialogView) *store.MessageView {
	m, err := r.store.FirstInboundSince(ctx, d.ContactID, *d.NotifiedSince)
	if err != nil {
		r.log.Warn("routing: message of a notice", "dialog_id", d.ID, "err", err)
		return nil
	}
	return m
}

// ownerOrGroup is who hears of a new waiting customer: the dialog's owner;
// without one the binding's owner group; with no group (or nobody active
// in it) everyone with access to the channel; with nobody there either
// the user who installed the integration. A user the CRM deactivated is
// skipped.
func (r *Router) ownerOrGroup(w *noticeWork, d *store.DialogView) []string {
	if o := d.OwnerUserID; o != "" && !w.inactive[o] {
		return []string{o}
	}
	p, err := PolicyOf(w.binding)
	if err != nil {
		r.log.Warn("routing: owner group of a notice", "binding_id", w.binding.ID, "err", err)
	}
	if p.Owner != nil {
		var group []string
		for _, u := range p.Owner.Users {
			if u.UserID != "" && !w.inactive[u.UserID] && !slices.Contains(group, u.UserID) {
				group = append(group, u.UserID)
			}
		}
		if len(group) > 0 {
			return group
		}
	}
	if len(w.access) > 0 {
		return w.access
	}
	if w.in.InstalledBy != "" {
		return []string{w.in.InstalledBy}
	}
	return nil
}
