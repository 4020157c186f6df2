package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// Hourly and daily mirroring (item 6).
//
// A customer message of a binding in hourly or daily mode opens (in the
// ingest transaction) the binding's batch for the window the message falls
// in, on the workspace's clock; the first message of a window also queues
// a JobMirrorWindow timer due at the window's end. When it runs (or when
// Flush is called) the integration's due batches are closed: each gets, in
// one transaction, every customer message of its binding not yet in a
// batch and not mirrored otherwise (mirror_batch_items has one row per
// binding and message, so a message lands in exactly one batch however
// often or concurrently closing runs). Closing queues JobMirrorSend, which
// hands all of the integration's closed batches to the CRM at once
// (BatchConnector) and links their messages as mirrored, as the each-path
// does. A batch is marked "sending" before the CRM is called; a batch found
// "sending" was perhaps written by an attempt that died before recording
// it, and the connector looks for its marker in the CRM before writing it
// again.

// Job kinds of batched mirroring.
const (
	// JobMirrorWindow closes an integration's batches whose window has
	// ended; it is queued once per batch, due at its window's end, in the
	// lane of the batch's channel.
	JobMirrorWindow = "crm.mirror.window"
	// JobMirrorSend writes an integration's closed batches to the CRM.
	JobMirrorSend = "crm.mirror.send"
)

// ModeRecord is the binding mode in which a CRM writes customers' messages
// into a record's timeline (Bitrix24's and amoCRM's "crm" mode). Only
// there do hourly, daily and none apply: a binding that mirrors into a
// chat (Bitrix24 Open Lines) takes each message as it comes, since
// operators answer there.
const ModeRecord = "crm"

// maxSendBatches bounds how many batches one JobMirrorSend hands over.
const maxSendBatches = 200

// mediaWait is how long a batch waits for a file still downloading before
// it is written with the file's link as it is.
const mediaWait = 10 * time.Minute

// Batch is one closed window of one binding, as a CRM writes it.
type Batch struct {
	ID      string
	Binding *store.ChannelBinding
	Channel *store.Channel
	// Mode is MirrorHourly or MirrorDaily.
	Mode string
	// Opens and Closes bound the period the batch covers: Closes is the
	// window's end, or the moment a flush closed it early.
	Opens, Closes time.Time
	// Location is the workspace's clock, for the times shown.
	Location *time.Location
	// Retry says an earlier attempt may have written the batch already:
	// look for it in the CRM before writing it again.
	Retry bool
	// Messages are the customers' messages, oldest first; each carries its
	// Contact.
	Messages []store.MessageView
}

// BatchConnector is what a CRM implements to take hourly and daily
// batches.
type BatchConnector interface {
	// MirrorBatches writes the batches, in as few calls as the CRM allows,
	// and returns the ids of those written completely (or found written).
	// A batch not returned is attempted again later with Retry set.
	MirrorBatches(ctx context.Context, in *store.Integration, batches []Batch) (sent []string, err error)
}

// FlushResult is what a flush closed.
type FlushResult struct {
	IntegrationID string `json:"integration_id"`
	// Batches counts the batches closed with at least one message, and
	// Messages the messages they took.
	Batches  int `json:"batches"`
	Messages int `json:"messages"`
	// Parked counts the open batches left open because their binding is
	// gone and the channel is not bound again yet.
	Parked int `json:"parked,omitempty"`
}

type batchJob struct {
	IntegrationID string `json:"integration_id"`
}

// MirrorModeOf is how a binding's customer messages reach the CRM.
func MirrorModeOf(b *store.ChannelBinding) string {
	if b.Mode != ModeRecord || b.Mirror == "" {
		return MirrorEach
	}
	return b.Mirror
}

// Location is a workspace's clock; an unknown or empty name is UTC.
func Location(tz string) *time.Location {
	if tz == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Window returns the batch window of mode that t falls in on the clock of
// loc: the local hour (from the top of the hour, which in zones such as
// Asia/Kolkata is at half past in UTC) or the local day (from midnight, or
// from the first instant of the day where a clock change skips midnight).
// Around clock changes a window is as long as the wall clock makes it: the
// day of a spring change has 23 hours, the repeated hour of an autumn
// change is two windows.
func Window(mode string, t time.Time, loc *time.Location) (opens, closes time.Time) {
	lt := t.In(loc)
	if mode == MirrorDaily {
		opens = dayStart(lt.Year(), lt.Month(), lt.Day(), loc)
		return opens, dayStart(lt.Year(), lt.Month(), lt.Day()+1, loc)
	}
	// The hour is cut where the clock changes, so that a change by half an
	// hour (Lord Howe) gives a half-hour window rather than an overlap.
	zs, ze := lt.ZoneBounds()
	top := hourStart(lt)
	opens, closes = top, top.Add(time.Hour)
	if !zs.IsZero() && opens.Before(zs) {
		opens = zs
	}
	if !ze.IsZero() && closes.After(ze) {
		closes = ze
	}
	return opens, closes
}

// hourStart is the instant the local hour of lt began, in lt's offset.
func hourStart(lt time.Time) time.Time {
	return lt.Add(-time.Duration(lt.Minute())*time.Minute - time.Duration(lt.Second())*time.Second - time.Duration(lt.Nanosecond()))
}

// dayStart is the first instant whose local date is y-m-d. time.Date does
// not say which side of a gap it picks when midnight does not exist, so
// the answer is checked and moved into the day.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	want := time.Date(y, m, d, 12, 0, 0, 0, time.UTC) // normalises d past the month's end
	for i := 0; i < 4; i++ {
		ly, lm, ld := t.In(loc).Date()
		if ly == want.Year() && lm == want.Month() && ld == want.Day() {
			break
		}
		t = hourStart(t.Add(time.Hour).In(loc))
	}
	return t
}

// mirrorStored routes one customer message of a live binding by the
// binding's mirror mode, in the ingest transaction.
func (r *Router) mirrorStored(tx *gorm.DB, b *store.ChannelBinding, m *store.Message) error {
	switch mode := MirrorModeOf(b); mode {
	case MirrorNone:
		// Marked as handled, so switching to each later does not pour the
		// history into the CRM; the dialog is kept all the same.
		if err := store.PutLink(tx, b.IntegrationID, LinkMirrored, m.ID, "none:"+b.ID); err != nil {
			return fmt.Errorf("routing: %w", err)
		}
		return nil
	case MirrorHourly, MirrorDaily:
		return openWindow(tx, b, mode, m.CreatedAt)
	}
	return enqueueMirror(tx, b.WorkspaceID, b.ChannelID, b.ID, m.ID)
}

// openWindow opens the binding's batch for the window at t and, when it is
// new, queues its closing at the window's end.
func openWindow(tx *gorm.DB, b *store.ChannelBinding, mode string, t time.Time) error {
	tz, err := store.WorkspaceTimezone(tx, b.WorkspaceID)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	opens, closes := Window(mode, t, Location(tz))
	created, err := store.OpenMirrorBatch(tx, b, mode, opens, closes)
	if err != nil || !created {
		return err
	}
	// The timer is the channel's: each batch queues its own, so a channel's
	// close is not held up by another channel's backlog in the turns of the
	// lanes, though its run closes whatever other batch of the integration
	// is due too (their own timers then find nothing).
	_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobMirrorWindow, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID, RunAt: closes,
		Payload: batchJob{IntegrationID: b.IntegrationID}, MaxAttempts: 50})
	if err != nil {
		return fmt.Errorf("routing: enqueue mirror window: %w", err)
	}
	return nil
}

// leaveToBatches is the each-path's job finding its binding in another
// mode (it was switched): hourly and daily messages it would have sent are
// left to a window, opened now so that they are not left waiting for the
// next customer; in none mode nothing is written.
func (r *Router) leaveToBatches(ctx context.Context, b *store.ChannelBinding, mode string) error {
	if mode != MirrorHourly && mode != MirrorDaily {
		return nil
	}
	return r.store.Tx(ctx, func(tx *gorm.DB) error { return openWindow(tx, b, mode, store.Now()) })
}

// Flush closes an integration's open batches now, whatever their window,
// and queues their writing; the integration is looked up in scope (another
// workspace's is not found).
func (r *Router) Flush(ctx context.Context, scope store.Scope, integrationID string) (FlushResult, error) {
	in, err := r.store.GetIntegration(ctx, scope, integrationID)
	if err != nil {
		return FlushResult{}, err
	}
	res, err := r.closeBatches(ctx, in.ID, nil, nil)
	res.IntegrationID = in.ID
	return res, err
}

// closeBatches closes the integration's open batches (those whose window
// ended by until; all with until nil, the flush) and queues their writing.
// end, when not nil, runs last in the same transaction (a window job ends
// there).
func (r *Router) closeBatches(ctx context.Context, integrationID string, until *time.Time, end func(tx *gorm.DB, res FlushResult) error) (FlushResult, error) {
	var res FlushResult
	// Read before the transaction: SQLite has one connection, held by it.
	bindings, err := r.store.ListBindings(ctx, integrationID)
	if err != nil {
		return res, fmt.Errorf("routing: %w", err)
	}
	byID := make(map[string]*store.ChannelBinding, len(bindings))
	byChannel := make(map[string]*store.ChannelBinding, len(bindings))
	for i := range bindings {
		byID[bindings[i].ID] = &bindings[i]
		byChannel[bindings[i].ChannelID] = &bindings[i]
	}
	err = r.store.Tx(ctx, func(tx *gorm.DB) error {
		res = FlushResult{}
		open, err := store.OpenMirrorBatches(tx, integrationID, until)
		if err != nil {
			return err
		}
		var workspaceID string
		for i := range open {
			batch := &open[i]
			since, upto := batch.ClosesAt, batch.ClosesAt // an empty range: takes nothing
			b := byID[batch.BindingID]
			var heir *store.ChannelBinding
			switch {
			case b == nil && byChannel[batch.ChannelID] == nil:
				// Its binding is gone (unbound, or the integration was
				// disabled) and the channel is not bound again yet: its
				// messages were accepted for the CRM, so the batch stays
				// open, parked, until the channel is bound again.
				res.Parked++
				continue
			case b == nil:
				// The channel is bound again: the new binding writes the
				// old one's window, the messages the batch was opened
				// for, up to its last touch (each message's ingest
				// touches it; nothing does after its binding is gone),
				// so none of those the new binding batches itself.
				heir = byChannel[batch.ChannelID]
				since, upto = batch.OpensAt, batch.UpdatedAt.Add(time.Millisecond)
				batch.BindingID = heir.ID // its messages are placed under the heir
			case MirrorModeOf(b) != MirrorEach:
				since = b.CreatedAt
				if until == nil {
					upto = time.Time{} // a flush takes everything there is
				}
			}
			closed, n, err := store.CloseMirrorBatch(tx, batch, since, upto, LinkMirrored)
			if err != nil {
				return err
			}
			if closed && heir != nil {
				if err := store.MoveMirrorBatch(tx, batch.ID, heir.ID); err != nil {
					return err
				}
			}
			if closed && b != nil && MirrorModeOf(b) == MirrorEach {
				// Switched to each since the window opened: the each-path
				// owns the binding's messages, and is woken for those that
				// came while it was hourly or daily.
				if err := enqueueMirror(tx, b.WorkspaceID, b.ChannelID, b.ID, ""); err != nil {
					return err
				}
			}
			if closed && n > 0 {
				res.Batches++
				res.Messages += n
				workspaceID = batch.WorkspaceID
			}
		}
		if res.Batches > 0 {
			// No lane: one send writes every closed batch of the
			// integration, whichever channels they came from.
			_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobMirrorSend, WorkspaceID: workspaceID, Key: "mirror-send:" + integrationID,
				Payload: batchJob{IntegrationID: integrationID}, MaxAttempts: 50})
			if err != nil {
				return fmt.Errorf("routing: enqueue mirror send: %w", err)
			}
		}
		if end != nil {
			return end(tx, res)
		}
		return nil
	})
	if err == nil && res.Batches > 0 && r.Notify != nil {
		r.Notify()
	}
	return res, err
}

func (r *Router) handleMirrorWindow(ctx context.Context, j *queue.Job) error {
	var p batchJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	now := store.Now()
	// The job ends in the commit of the batches it closed, unless some
	// are parked and it has to look again.
	res, err := r.closeBatches(ctx, p.IntegrationID, &now, func(tx *gorm.DB, res FlushResult) error {
		if res.Parked > 0 {
			return nil
		}
		return queue.Done(tx, j)
	})
	if err == nil && res.Parked > 0 {
		// Looked at again until the channel is bound again; a job that
		// runs out of attempts is re-armed when the account is
		// installed again (Resume).
		return queue.RetryAfter(parkDelay, errBatchParked)
	}
	return err
}

// errBatchParked: a batch waits for its channel to be bound again.
var errBatchParked = errors.New("routing: mirror batches wait for their channel to be bound again")

func (r *Router) handleMirrorSend(ctx context.Context, j *queue.Job) error {
	var p batchJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	in, conn, err := r.integration(ctx, p.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // removed, with its batches
	}
	if err != nil {
		return err
	}
	if in.State == store.IntegrationUninstalled {
		// Its batches were accepted: they wait for the account to be
		// installed again (Resume re-arms this job), not dropped.
		return queue.RetryAfter(parkDelay, ErrParked)
	}
	if run, err := workable(in); !run {
		return err
	}
	bc, ok := conn.(BatchConnector)
	if !ok {
		return queue.Permanent(fmt.Errorf("routing: %s takes no mirror batches", in.Type))
	}
	for {
		pending, err := r.store.PendingMirrorBatches(ctx, in.ID, maxSendBatches)
		if err != nil || len(pending) == 0 {
			return err
		}
		batches, err := r.loadBatches(ctx, in, pending)
		if err != nil {
			return err
		}
		if len(batches) > 0 {
			// The last round ends the job in the commit of its last batch.
			var last *queue.Job
			if len(batches) == len(pending) && len(pending) < maxSendBatches {
				last = j
			}
			if err := r.sendBatches(ctx, in, bc, batches, last); err != nil {
				return err
			}
		}
		if len(batches) < len(pending) {
			return queue.RetryAfter(parkDelay, errBatchParked)
		}
		if len(pending) < maxSendBatches {
			return nil
		}
	}
}

// loadBatches reads the batches' messages. A batch whose binding is gone
// goes to the binding that replaced it (the channel bound again to the
// integration), or waits for one: nothing accepted is dropped. A file
// still downloading holds everything back for a while, so the link in the
// CRM works.
func (r *Router) loadBatches(ctx context.Context, in *store.Integration, pending []store.MirrorBatch) ([]Batch, error) {
	ws, err := r.store.GetWorkspace(ctx, store.All, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	loc := Location(ws.Timezone)
	var out []Batch
	for _, pb := range pending {
		b, err := r.store.GetBinding(ctx, pb.BindingID)
		if errors.Is(err, store.ErrNotFound) {
			b, err = r.store.BindingOf(ctx, in.ID, pb.ChannelID)
			if errors.Is(err, store.ErrNotFound) {
				r.log.Info("routing: mirror batch waits for its channel to be bound again", "batch_id", pb.ID, "messages", pb.Messages)
				continue
			}
			if err == nil {
				err = r.store.Tx(ctx, func(tx *gorm.DB) error { return store.MoveMirrorBatch(tx, pb.ID, b.ID) })
			}
		}
		if err != nil {
			return nil, err
		}
		ch, err := r.store.GetChannel(ctx, store.All, b.ChannelID)
		if err != nil {
			return nil, err
		}
		ids, err := r.store.MirrorBatchMessageIDs(ctx, pb.ID)
		if err != nil {
			return nil, err
		}
		batch := Batch{ID: pb.ID, Binding: b, Channel: ch, Mode: pb.Mode, Opens: pb.OpensAt, Closes: pb.ClosesAt,
			Location: loc, Retry: pb.State == store.BatchSending || pb.Attempts > 0}
		if pb.ClosedAt != nil && pb.ClosedAt.Before(pb.ClosesAt) {
			batch.Closes = *pb.ClosedAt
		}
		for _, id := range ids {
			v, err := r.store.GetMessage(ctx, store.All, id)
			if err != nil {
				return nil, err
			}
			if v.Media != nil && v.Media.State == store.MediaPending && time.Since(v.CreatedAt) < mediaWait {
				return nil, queue.RetryAfter(30*time.Second, errors.New("routing: a batched file is still downloading"))
			}
			batch.Messages = append(batch.Messages, *v)
		}
		out = append(out, batch)
	}
	return out, nil
}

// sendBatches marks the batches as sending, hands them to the CRM and
// records what it wrote: the batch as sent and each message as mirrored,
// in one transaction per batch.
//
// j, when not nil, is the running job, ended in the commit of the last
// batch if the CRM took them all; with its lease lost that batch is
// recorded all the same (the CRM has it), without the job's end.
func (r *Router) sendBatches(ctx context.Context, in *store.Integration, bc BatchConnector, batches []Batch, j *queue.Job) error {
	ids := make([]string, len(batches))
	byID := make(map[string]*Batch, len(batches))
	for i := range batches {
		ids[i] = batches[i].ID
		byID[batches[i].ID] = &batches[i]
	}
	if err := r.store.MarkMirrorBatchesSending(ctx, ids); err != nil {
		return err
	}
	sent, err := bc.MirrorBatches(ctx, in, batches)
	for i, id := range sent {
		b := byID[id]
		if b == nil {
			continue
		}
		end := j != nil && err == nil && len(sent) == len(batches) && i == len(sent)-1
		record := func(tx *gorm.DB) error {
			for _, m := range b.Messages {
				if err := store.PutLink(tx, in.ID, LinkMirrored, m.ID, b.Binding.ID); err != nil {
					return err
				}
			}
			if err := store.MarkMirrorBatchSent(tx, b.ID); err != nil {
				return err
			}
			if end {
				return queue.Done(tx, j)
			}
			return nil
		}
		// Recorded even when the context ended: the CRM has the batch.
		lerr := r.store.Tx(context.WithoutCancel(ctx), record)
		if end && errors.Is(lerr, queue.ErrLeaseLost) {
			end = false
			lerr = r.store.Tx(context.WithoutCancel(ctx), record)
		}
		if lerr != nil {
			return lerr
		}
	}
	if errors.Is(err, ErrParked) {
		return queue.RetryAfter(parkDelay, err)
	}
	return err
}

// Bound is told of a channel bound to an integration: batches an earlier
// binding of the channel left waiting (it was unbound, or the integration
// uninstalled, before they were written) are closed and written now
// rather than at their next look. Nothing waiting costs no CRM call.
func (r *Router) Bound(ctx context.Context, b *store.ChannelBinding) error {
	if err := queue.Rearm(ctx, r.store.DB, b.WorkspaceID, JobMirrorSend); err != nil {
		return err
	}
	return r.store.Tx(ctx, func(tx *gorm.DB) error {
		// Queued for this channel's waiting batches: the channel's lane.
		_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobMirrorWindow, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID,
			Payload: batchJob{IntegrationID: b.IntegrationID}, MaxAttempts: 50})
		if err != nil {
			return fmt.Errorf("routing: enqueue mirror window: %w", err)
		}
		return nil
	})
}
