// Package routing carries what the messaging core stores to the CRMs a
// channel is bound to, and reports back what happened to messages the CRMs
// sent. It declares the Connector it needs; each CRM package implements it
// and never sees the others.
package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// Job kinds.
const (
	JobMirror = "crm.mirror"
	JobStatus = "crm.status"
)

// LinkOutbound is the crm_links kind that ties an outbound message to the
// CRM message it was written as; LinkMirrored marks a customer message as
// delivered into the CRM.
const (
	LinkOutbound = "out_message"
	LinkMirrored = "mirrored"
	// LinkMirrorAttempt marks a message a Mirror call was made with and
	// whose outcome is not recorded yet: a run that finds it did not see
	// the earlier call end (the process died, the answer was lost), so the
	// message may be in the CRM already (Delivery.InDoubt).
	LinkMirrorAttempt = "mirror_try"
)

// MaxBatch bounds how many messages one Mirror call carries.
const MaxBatch = 50

// runCalls bounds the Mirror calls one mirror job makes (it takes the
// messages of the jobs queued behind it).
const runCalls = 10

// ErrUnavailable marks a CRM call that got no answer at all (connection
// refused or reset, timeout): the CRM is down or cut off. Such work waits
// without spending attempts (waitForCRM), so an outage of any length
// never dead-letters it, and is tried again often enough that the backlog
// starts draining within half a minute of the CRM's return.
var ErrUnavailable = errors.New("routing: CRM did not answer")

// unavailableRetryMax bounds how long work waits for a CRM that did not
// answer before it tries again.
const unavailableRetryMax = 30 * time.Second

// waitForCRM turns a job's ErrUnavailable into a snooze (not a failure):
// the longer the job has waited since it was queued, the longer the pause,
// from a second up to unavailableRetryMax. Every other error passes.
func waitForCRM(j *queue.Job, err error) error {
	if !errors.Is(err, ErrUnavailable) || queue.Snoozed(err) {
		return err
	}
	d := min(max(store.Now().Sub(j.CreatedAt)/4, time.Second), unavailableRetryMax)
	return queue.Snooze(store.Now().Add(d), err)
}

// WaitingForCRM wraps a job handler so that a CRM found down
// (ErrUnavailable in the error's chain: no answer, or an answer of a
// server that is down) puts the job off without spending an attempt, as
// waitForCRM says: every CRM job waits an outage out the same way.
func WaitingForCRM(h queue.Handler) queue.Handler {
	return func(ctx context.Context, j *queue.Job) error {
		return waitForCRM(j, h(ctx, j))
	}
}

// ErrParked tells the queue to try later without calling it a failure:
// the integration cannot work now (needs re-authorisation) but its work
// must not be lost.
var ErrParked = errors.New("routing: integration is not active; work parked")

// Connector is what routing needs from a CRM integration.
type Connector interface {
	// Mirror delivers customers' messages into the CRM: msgs are oldest
	// first and may belong to several customers of the binding's channel
	// (each MessageView carries its Contact). It returns the ids of the
	// messages it delivered; a customer's later message is never delivered
	// before an earlier one.
	Mirror(ctx context.Context, d *Delivery, msgs []store.MessageView) ([]string, error)
	// Status tells the CRM what happened to a message its user wrote.
	Status(ctx context.Context, d *Delivery, m *store.MessageView) error
}

// Delivery is the context of one piece of CRM work.
type Delivery struct {
	Integration *store.Integration
	Binding     *store.ChannelBinding
	Channel     *store.Channel
	// Contact is set for Status; Mirror's messages carry their own.
	Contact *store.Contact
	// InDoubt names, for Mirror, the messages an earlier call was made
	// with that may have landed: its outcome is unknown. A connector that
	// can look a message up in the CRM does so first and reports the ones
	// found as delivered without writing them again; one that cannot
	// writes them again (a possible duplicate rather than a lost message).
	InDoubt map[string]bool
	// Job is the running job the delivery is the last step of, or nil. A
	// connector whose own last step is a database write ends it there with
	// queue.Done (one commit for the work and the job's end); one that
	// does not leaves it to the queue.
	Job *queue.Job
}

// Router implements the messaging hooks and the CRM jobs.
type Router struct {
	store      *store.Store
	log        *slog.Logger
	connectors map[string]Connector
	// Batch off sends one message per call (kept for the benchmark that
	// shows what batching saves).
	Batch bool
	// Notify wakes the local queue workers after a flush queued work.
	Notify func()
	// menus sends the branch menu (branch.go); set by SetMenuSender.
	menus MenuSender
	// TimeMirror, when set, is told how long each step of a per-message
	// mirror run took (MirrorSteps), so that an operator whose binding's
	// mirror falls behind sees whether the database or the CRM holds it.
	TimeMirror func(step string, took time.Duration)
}

// The steps of a per-message mirror run, as TimeMirror names them.
const (
	// MirrorStepPlan reads the jobs queued behind the run (and, for a
	// sweep, the channel's unmirrored messages).
	MirrorStepPlan = "plan"
	// MirrorStepRead reads the run's messages with their customers and
	// files.
	MirrorStepRead = "read"
	// MirrorStepMark commits a chunk's attempt marks before its CRM call.
	MirrorStepMark = "mark"
	// MirrorStepCRM is a chunk's CRM call, with the connector's own reads
	// and writes around it and its wait for the CRM's rate limit.
	MirrorStepCRM = "crm"
	// MirrorStepRecord commits the run's outcome: the messages linked as
	// mirrored, the jobs it covered ended.
	MirrorStepRecord = "record"
)

// MirrorSteps lists the steps TimeMirror is told of, in run order.
var MirrorSteps = []string{MirrorStepPlan, MirrorStepRead, MirrorStepMark, MirrorStepCRM, MirrorStepRecord}

// since tells TimeMirror, when set, that step took since began, and
// returns now for the next step to start from.
func (r *Router) since(step string, began time.Time) time.Time {
	now := time.Now()
	if r.TimeMirror != nil {
		r.TimeMirror(step, now.Sub(began))
	}
	return now
}

func New(st *store.Store, log *slog.Logger) *Router {
	return &Router{store: st, log: log, connectors: map[string]Connector{}, Batch: true}
}

// Register wires a connector for an integration type.
func (r *Router) Register(typ string, c Connector) { r.connectors[typ] = c }

// Handle adds the router's jobs to a queue.
func (r *Router) Handle(q interface {
	Handle(kind string, h queue.Handler)
}) {
	// Each of them may call a CRM: each waits out the CRM's outage.
	for kind, h := range map[string]queue.Handler{
		JobMirror:       r.handleMirror,
		JobStatus:       r.handleStatus,
		JobMirrorWindow: r.handleMirrorWindow,
		JobMirrorSend:   r.handleMirrorSend,
		JobBranchMenu:   r.handleBranchMenu,
		JobNotify:       r.handleNotify,
		JobEscalate:     r.handleEscalate,
		JobEnsureRecord: r.handleEnsureRecord,
		JobChat:         r.handleChat,
		JobAnswered:     r.handleAnswered,
		JobEcho:         r.handleEcho,
	} {
		q.Handle(kind, WaitingForCRM(h))
	}
}

type mirrorJob struct {
	BindingID string `json:"binding_id"`
	// MessageID is the message the job was queued for; empty in a sweep,
	// which looks for everything unmirrored of the binding's channel.
	MessageID string `json:"message_id,omitempty"`
}

type statusJob struct {
	IntegrationID string `json:"integration_id"`
	MessageID     string `json:"message_id"`
	// Status is the one that caused the job: by the time it runs the
	// message may have moved on (delivered, then read a moment later),
	// and each step must still be reported.
	Status string `json:"status"`
}

func key(bindingOrIntegration, contactID string) string {
	return "crm:" + bindingOrIntegration + ":" + contactID
}

// MessageStored keeps the dialog of the message's customer in every
// integration the channel is bound to, and enqueues mirroring of a
// customer message to the live ones. It runs in the transaction that
// stored the message, so a dialog never disagrees with the messages: per
// binding one upsert, plus the mirror job for a customer's message.
//
// The jobs of one binding run one at a time, in order, and each carries
// every message waiting on that binding (up to MaxBatch), so a burst
// becomes a few calls; the later jobs find nothing left to do.
func (r *Router) MessageStored(tx *gorm.DB, ch *store.Channel, m *store.Message) error {
	// Cached per instance for a second (store.FeedOf says what a stale
	// read costs); a channel in branch mode is read in tx every time.
	feed, err := r.store.FeedOf(tx, ch.ID)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	// In branch mode the customer's branch alone (branch.go).
	bindings, err := r.branchBindings(tx, ch, m, &feed.Routing, feed.Bindings)
	if err != nil {
		return err
	}
	for _, b := range bindings {
		k := store.DialogKey{WorkspaceID: b.WorkspaceID, IntegrationID: b.IntegrationID, ChannelID: ch.ID, ContactID: m.ContactID}
		// The gateway's clock, not the messenger's: answers have no
		// messenger time when they are queued, and timers later count on
		// this clock too.
		if m.Direction != store.Inbound {
			if err := r.answerEnds(tx, &b, k); err != nil {
				return err
			}
			if err := store.DialogOutbound(tx, k, m.CreatedAt); err != nil {
				return fmt.Errorf("routing: %w", err)
			}
			if err := r.outboundStored(tx, &b, m); err != nil {
				return err
			}
			if err := r.echoStored(tx, &b, m); err != nil {
				return err
			}
			continue
		}
		if err := store.DialogInbound(tx, k, m.CreatedAt, wantsAnswer(m)); err != nil {
			return fmt.Errorf("routing: %w", err)
		}
		if !b.Live() {
			continue // parked until the portal is authorised again
		}
		if err := r.chatStored(tx, &b, m); err != nil {
			return err
		}
		if err := r.mirrorStored(tx, &b.ChannelBinding, m); err != nil {
			return err
		}
	}
	// After the mirror jobs, so a notice can queue behind its binding's.
	return r.armNotices(tx, ch, m, bindings)
}

// wantsAnswer says whether a customer's message makes the dialog wait: a
// reaction to our message, or a notice from the messenger (the customer
// changed number), asks nobody anything.
func wantsAnswer(m *store.Message) bool {
	switch channel.MsgType(m.Type) {
	case channel.MsgReaction, channel.MsgSystem:
		return false
	}
	return true
}

// enqueueMirror queues a mirror job for one binding (of channelID) and one
// message (an empty messageID queues a sweep); the jobs of a binding share
// one key, so they run one at a time and in order, and the one that runs
// takes the messages of those waiting behind it (handleMirror).
func enqueueMirror(tx *gorm.DB, workspaceID, channelID, bindingID, messageID string) error {
	_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobMirror, WorkspaceID: workspaceID, Lane: channelID,
		Key: mirrorKey(bindingID), Payload: mirrorJob{BindingID: bindingID, MessageID: messageID}, MaxAttempts: 50})
	if err != nil {
		return fmt.Errorf("routing: enqueue mirror: %w", err)
	}
	return nil
}

// StatusChanged reports the fate of a message to the CRM it came from.
func (r *Router) StatusChanged(tx *gorm.DB, ch *store.Channel, m *store.Message) error {
	return r.StatusesChanged(tx, ch, []*store.Message{m})
}

// StatusesChanged is StatusChanged for each of a channel's messages in
// order, with their CRM links read in one statement instead of one each:
// the same status jobs, enqueued in the same order.
func (r *Router) StatusesChanged(tx *gorm.DB, ch *store.Channel, ms []*store.Message) error {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	links, err := store.LinksByLocals(tx, LinkOutbound, ids)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	for _, m := range ms {
		for _, l := range links[m.ID] {
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobStatus, WorkspaceID: ch.WorkspaceID, Lane: ch.ID,
				Key: key(l.IntegrationID, m.ContactID), Payload: statusJob{IntegrationID: l.IntegrationID, MessageID: m.ID, Status: m.Status}, MaxAttempts: 20})
			if err != nil {
				return fmt.Errorf("routing: enqueue status: %w", err)
			}
		}
	}
	return nil
}

// parkDelay is how long work waits while an integration is inactive.
const parkDelay = 10 * time.Minute

// Live says whether an integration can be worked with: active, or with
// handlers that miss us — such a CRM still takes customers' messages;
// only its operators' replies cannot arrive. It is the one rule for every
// CRM and for routing's own jobs.
func Live(in *store.Integration) bool {
	return in.State == store.IntegrationActive || in.State == store.IntegrationHandlersMismatch
}

// workable says whether an integration's work may run now: an uninstalled
// one drops it (nil), one needing re-authorisation parks it.
func workable(in *store.Integration) (bool, error) {
	switch {
	case Live(in):
		return true, nil
	case in.State == store.IntegrationUninstalled:
		return false, nil
	}
	return false, queue.RetryAfter(parkDelay, ErrParked)
}

// jobBinding decodes a per-binding job's payload into p and loads the
// binding *bindingID names (read after the decode). A nil binding with a
// nil error means the channel was unbound since: the job has nothing left
// to do.
func (r *Router) jobBinding(ctx context.Context, j *queue.Job, p any, bindingID *string) (*store.ChannelBinding, error) {
	if err := j.Decode(p); err != nil {
		return nil, queue.Permanent(err)
	}
	b, err := r.store.GetBinding(ctx, *bindingID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (r *Router) integration(ctx context.Context, id string) (*store.Integration, Connector, error) {
	in, err := r.store.GetIntegration(ctx, store.All, id)
	if err != nil {
		return nil, nil, err
	}
	c, ok := r.connectors[in.Type]
	if !ok {
		return nil, nil, queue.Permanent(fmt.Errorf("no connector for %s", in.Type))
	}
	return in, c, nil
}

func (r *Router) handleMirror(ctx context.Context, j *queue.Job) error {
	var p mirrorJob
	b, err := r.jobBinding(ctx, j, &p, &p.BindingID)
	if b == nil {
		return err // nil when unbound since: nothing to mirror to
	}
	if mode := MirrorModeOf(b); mode != MirrorEach {
		return r.leaveToBatches(ctx, b, mode)
	}
	in, conn, err := r.integration(ctx, b.IntegrationID)
	if err != nil {
		return err
	}
	if run, err := workable(in); !run {
		return err
	}
	ch, err := r.store.GetChannel(ctx, store.All, b.ChannelID)
	if err != nil {
		return err
	}
	step := time.Now()
	w, err := r.mirrorWork(ctx, j, &p, in.ID, b)
	if err != nil {
		return err
	}
	step = r.since(MirrorStepPlan, step)
	msgs, err := r.store.MessagesToMirror(ctx, in.ID, b.ID, LinkMirrored, w.ids)
	if err != nil {
		return fmt.Errorf("routing: pending messages: %w", err)
	}
	step = r.since(MirrorStepRead, step)
	unwritten := make(map[string]bool, len(msgs))
	for i := range msgs {
		unwritten[msgs[i].ID] = true
	}
	if len(msgs) > MaxBatch*runCalls {
		msgs = msgs[:MaxBatch*runCalls]
	}
	if !r.Batch && len(msgs) > 1 {
		msgs = msgs[:1]
		if p.MessageID == "" {
			defer func() {
				// Without batching every message is its own call: a sweep
				// queues another for the rest.
				err := r.store.Tx(context.WithoutCancel(ctx), func(tx *gorm.DB) error {
					return enqueueMirror(tx, b.WorkspaceID, b.ChannelID, b.ID, "")
				})
				if err != nil {
					// The rest goes with the binding's next message.
					r.log.Error("routing: queue the next mirror", "binding_id", b.ID, "err", err)
				}
			}()
		}
	}
	// Calls of MaxBatch one after another while the run has time: a
	// binding's backlog (after an outage, or a burst) drains with one
	// claim per runCalls calls. The next call waits for the previous one,
	// and stops the run when it did not take all its messages, so no
	// customer's later message overtakes an earlier one. A chunk's
	// attempt marks are committed while the previous chunk's call is in
	// flight (the commit was a tenth of a run's time); marks of a chunk
	// the run then does not send are dropped again with its outcome.
	var done, unsent []string
	budget := time.Duration(math.MaxInt64)
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl) / 4
	}
	began := time.Now()
	var chunks [][]store.MessageView
	for start := 0; start < len(msgs); start += MaxBatch {
		chunks = append(chunks, msgs[start:min(start+MaxBatch, len(msgs))])
	}
	var ahead <-chan chunkMarks
	if len(chunks) > 0 {
		ahead = r.markChunk(ctx, in.ID, b.ID, chunks[0])
	}
	for k, chunk := range chunks {
		marks := <-ahead
		ahead = nil
		step = r.since(MirrorStepMark, step)
		if marks.err != nil {
			err = fmt.Errorf("routing: %w", marks.err)
			break
		}
		if k+1 < len(chunks) {
			ahead = r.markChunk(ctx, in.ID, b.ID, chunks[k+1])
		}
		d := &Delivery{Integration: in, Binding: b, Channel: ch, InDoubt: marks.inDoubt}
		var got []string
		got, err = conn.Mirror(ctx, d, chunk)
		step = r.since(MirrorStepCRM, step)
		done = append(done, got...)
		if err != nil || len(got) < len(chunk) || time.Since(began) > budget {
			break
		}
	}
	if ahead != nil {
		// Marked for a call the run does not make: those it marked itself
		// are not in doubt.
		if marks := <-ahead; marks.err == nil {
			unsent = marks.fresh
		}
	}
	// Followers whose message this run wrote, or an earlier one did (it
	// was not read back as unwritten), end with this run.
	for _, id := range done {
		delete(unwritten, id)
	}
	var covered []int64
	for _, f := range w.followers {
		if !unwritten[f.messageID] {
			covered = append(covered, f.jobID)
		}
	}
	finished := err == nil
	if len(done) > 0 || len(covered) > 0 || len(unsent) > 0 {
		lerr := r.store.Tx(ctx, func(tx *gorm.DB) error {
			if err := store.MarkMirrored(tx, in.ID, b.ID, LinkMirrored, LinkMirrorAttempt, done); err != nil {
				return err
			}
			if err := store.DropAttempts(tx, in.ID, LinkMirrorAttempt, unsent); err != nil {
				return err
			}
			if err := queue.Absorb(tx, j, covered); err != nil {
				return err
			}
			if finished {
				// All done: the job ends in the same commit.
				return queue.Done(tx, j)
			}
			return nil
		})
		if lerr != nil {
			return fmt.Errorf("routing: record mirrored: %w", lerr)
		}
		r.since(MirrorStepRecord, step)
	}
	if errors.Is(err, ErrParked) {
		return queue.RetryAfter(parkDelay, err)
	}
	return waitForCRM(j, err)
}

// chunkMarks is the outcome of marking a chunk's messages as attempted:
// those an earlier call was attempted for (in doubt), and those this mark
// wrote (fresh).
type chunkMarks struct {
	inDoubt map[string]bool
	fresh   []string
	err     error
}

// markChunk commits a chunk's attempt marks (store.MarkMirrorAttempts)
// in the background and hands over the outcome when it is done.
func (r *Router) markChunk(ctx context.Context, integrationID, bindingID string, chunk []store.MessageView) <-chan chunkMarks {
	out := make(chan chunkMarks, 1)
	ids := make([]string, len(chunk))
	for i := range chunk {
		ids[i] = chunk[i].ID
	}
	go func() {
		inDoubt, err := r.store.MarkMirrorAttempts(ctx, integrationID, bindingID, LinkMirrorAttempt, ids)
		m := chunkMarks{inDoubt: inDoubt, err: err}
		for _, id := range ids {
			if !inDoubt[id] {
				m.fresh = append(m.fresh, id)
			}
		}
		out <- m
	}()
	return out
}

// mirrorWork is what one mirror run looks at: the messages of the job and
// of the jobs queued behind it (a sweep's: every unmirrored message of the
// channel), and those followers.
type mirrorWork struct {
	ids       []string
	followers []mirrorFollower
}

// mirrorFollower is a per-message mirror job waiting behind the one that
// runs.
type mirrorFollower struct {
	jobID     int64
	messageID string
}

// mirrorWork collects the run's messages: its own (or, for a sweep, the
// channel's unmirrored ones) and those of the per-message jobs of the
// binding waiting behind it, so a burst of N messages costs about N /
// MaxBatch calls and reads, however long the channel's history. A
// follower's job is read before its message: a job seen committed means
// its message is (one transaction stores both).
func (r *Router) mirrorWork(ctx context.Context, j *queue.Job, p *mirrorJob, integrationID string, b *store.ChannelBinding) (mirrorWork, error) {
	var w mirrorWork
	fs, err := queue.Followers(ctx, r.store.DB.Gorm, j, MaxBatch*runCalls)
	if err != nil {
		return w, err
	}
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			w.ids = append(w.ids, id)
		}
	}
	if p.MessageID == "" {
		ids, err := r.store.UnmirroredInbound(ctx, integrationID, b.ID, LinkMirrored, b.ChannelID, b.CreatedAt, MaxBatch)
		if err != nil {
			return w, fmt.Errorf("routing: pending messages: %w", err)
		}
		for _, id := range ids {
			add(id)
		}
	}
	add(p.MessageID)
	for _, f := range fs {
		var fp mirrorJob
		if err := f.Decode(&fp); err != nil || fp.MessageID == "" || fp.BindingID != b.ID {
			continue // a sweep (or a job it cannot read) runs on its own
		}
		w.followers = append(w.followers, mirrorFollower{jobID: f.ID, messageID: fp.MessageID})
		add(fp.MessageID)
	}
	return w, nil
}

func (r *Router) handleStatus(ctx context.Context, j *queue.Job) error {
	var p statusJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	in, conn, err := r.integration(ctx, p.IntegrationID)
	if err != nil {
		return err
	}
	if run, err := workable(in); !run {
		return err
	}
	m, err := r.store.GetMessage(ctx, store.All, p.MessageID)
	if err != nil {
		return queue.Permanent(err)
	}
	if p.Status != "" {
		m.Status = p.Status
	}
	ch, err := r.store.GetChannel(ctx, store.All, m.ChannelID)
	if err != nil {
		return err
	}
	b, err := r.store.BindingOf(ctx, in.ID, ch.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // unbound since: nobody to tell
	}
	if err != nil {
		return err
	}
	err = conn.Status(ctx, &Delivery{Integration: in, Binding: b, Channel: ch, Contact: m.Contact, Job: j}, m)
	if errors.Is(err, ErrParked) {
		return queue.RetryAfter(parkDelay, err)
	}
	return err
}

// Resume re-arms an integration's parked and dead CRM work, after it was
// authorised again, and queues a mirror run per live binding: a customer
// message that came while the binding was not live has no mirror job of
// its own (MessageStored queues none then), and would otherwise wait for
// the customer's next message. All of it is one commit.
func (r *Router) Resume(ctx context.Context, workspaceID string) error {
	return r.store.Tx(ctx, func(tx *gorm.DB) error { return r.ResumeIn(ctx, tx, workspaceID) })
}

// ResumeIn is Resume in tx, a transaction of the router's store, so that
// a job whose last step is the resume (an account found paid again) ends
// in the same commit (queue.Done). The integrations are read in tx, so a
// state changed earlier in it counts.
func (r *Router) ResumeIn(ctx context.Context, tx *gorm.DB, workspaceID string) error {
	// Escalation timers re-armed before their deadline snooze again.
	if err := queue.RearmIn(tx, workspaceID, JobMirror, JobStatus, JobMirrorSend, JobNotify, JobEscalate, JobEnsureRecord, JobChat, JobAnswered, JobEcho); err != nil {
		return err
	}
	// A window's close is a timer due at the window's end: run now, it
	// would find the open window not due and be gone, and the window
	// would close only with the next one or a flush. Only a dead one
	// (parked past its attempts) runs again now; a pending one keeps
	// its time.
	if err := queue.RearmDeadIn(tx, workspaceID, JobMirrorWindow); err != nil {
		return err
	}
	return r.mirrorParked(ctx, tx, workspaceID)
}

// mirrorParked queues, in tx, one mirror run for each binding of the
// workspace's live integrations; a run with nothing unmirrored makes no
// CRM call.
func (r *Router) mirrorParked(ctx context.Context, tx *gorm.DB, workspaceID string) error {
	st := r.store.InTx(tx)
	ins, err := st.ListIntegrations(ctx, store.Scope{WorkspaceID: workspaceID})
	if err != nil {
		return err
	}
	for i := range ins {
		if !Live(&ins[i]) {
			continue
		}
		bs, err := st.ListBindings(ctx, ins[i].ID)
		if err != nil {
			return fmt.Errorf("routing: bindings to resume: %w", err)
		}
		for _, b := range bs {
			if err := enqueueMirror(tx, b.WorkspaceID, b.ChannelID, b.ID, ""); err != nil {
				return err
			}
		}
	}
	return nil
}
