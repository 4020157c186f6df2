package messaging

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// IngestResult counts what one webhook delivery did.
type IngestResult struct {
	Stored     int // new messages
	Duplicates int // messages seen before (Meta retried)
	Statuses   int // status updates applied or kept for later
	Unrouted   int // envelopes for channels we do not know
	Errors     int // account-level errors reported by Meta
}

// routed is one envelope of a delivery with the channel it belongs to.
type routed struct {
	ch  *store.Channel
	env *channel.Envelope
}

// counted is one message metric to count once its transaction committed.
type counted struct{ typ, dir, status string }

// Ingest stores a verified, parsed delivery. Everything for known channels
// is written in one transaction together with the jobs it causes (a
// transaction other deliveries arriving at the same time may share: see
// group_commit.go), so the caller may answer 200 once Ingest returns nil
// and nothing is lost.
func (s *Service) Ingest(ctx context.Context, b *channel.Batch, raw []byte) (IngestResult, error) {
	var res IngestResult
	var work []routed
	for i := range b.Envelopes {
		env := &b.Envelopes[i]
		ch, err := s.store.ChannelByAccount(ctx, env.ChannelType, env.AccountID)
		if errors.Is(err, store.ErrNotFound) {
			res.Unrouted++
			s.log.Warn("webhook for unknown channel", "channel_type", env.ChannelType, "account_id", env.AccountID)
			if err := s.store.SaveUnrouted(ctx, env.ChannelType, env.AccountID, raw); err != nil {
				return res, fmt.Errorf("messaging: keep unrouted delivery: %w", err)
			}
			continue
		}
		if err != nil {
			return res, fmt.Errorf("messaging: route %s %s: %w", env.ChannelType, env.AccountID, err)
		}
		if env.Owner != ch.WabaID {
			// The number was proven to belong to the channel's WABA; a
			// delivery naming another (or none) is not this channel's to
			// store. Kept like any unroutable delivery, and still answered
			// 200 so Meta does not disable the webhook.
			res.Unrouted++
			s.log.Warn("webhook from another business account than the channel's; not stored into it",
				"channel_id", ch.ID, "channel_type", env.ChannelType, "account_id", env.AccountID, "owner", env.Owner)
			if err := s.store.SaveUnrouted(ctx, env.ChannelType, env.AccountID, raw); err != nil {
				return res, fmt.Errorf("messaging: keep unrouted delivery: %w", err)
			}
			continue
		}
		work = append(work, routed{ch, env})
	}
	if len(work) == 0 {
		return res, nil
	}
	d := &delivery{ctx: ctx, work: work, wake: make(chan []*delivery, 1)}
	if err := s.commit(d); err != nil {
		return res, fmt.Errorf("messaging: store delivery: %w", err)
	}
	res.Stored, res.Duplicates, res.Statuses, res.Errors = d.res.Stored, d.res.Duplicates, d.res.Statuses, d.res.Errors
	for _, c := range d.seen {
		s.metrics.Messages.WithLabelValues(c.typ, c.dir, c.status).Inc()
	}
	for _, w := range work {
		s.webhookSeen(ctx, w.ch.ID)
	}
	if d.enqueued {
		s.notify()
	}
	return res, nil
}

// storeDelivery writes one delivery's messages and statuses in tx, counting
// into d.
func (s *Service) storeDelivery(tx *gorm.DB, d *delivery) error {
	for _, w := range d.work {
		for i := range w.env.Messages {
			in := &w.env.Messages[i]
			stored, job, err := s.storeInbound(tx, w.ch, in)
			if err != nil {
				return err
			}
			if !stored {
				d.res.Duplicates++
				continue
			}
			d.res.Stored++
			d.enqueued = d.enqueued || job
			dir := store.Inbound
			if in.Echo {
				dir = store.Outbound
			}
			d.seen = append(d.seen, counted{w.ch.Type, dir, "received"})
		}
		for _, st := range w.env.Statuses {
			r, m, err := store.ApplyStatus(tx, w.ch.ID, st)
			if err != nil {
				return err
			}
			d.res.Statuses++
			if r == store.StatusApplied {
				d.seen = append(d.seen, counted{w.ch.Type, store.Outbound, string(st.Status)})
				if err := s.statusChanged(tx, w.ch, m); err != nil {
					return err
				}
			}
		}
		for _, e := range w.env.Errors {
			d.res.Errors++
			s.log.Warn("messenger reported an account error", "channel_id", w.ch.ID, "code", e.Code, "title", e.Title, "details", e.Details)
		}
	}
	return nil
}

// storeInbound writes one inbound event; it reports whether it was new and
// whether it enqueued a job.
func (s *Service) storeInbound(tx *gorm.DB, ch *store.Channel, in *channel.Inbound) (bool, bool, error) {
	if in.Deleted {
		// The customer unsent an earlier message: mark it, keep its text.
		m, err := store.FindByExternalID(tx, ch.ID, in.ExternalID)
		if errors.Is(err, store.ErrNotFound) {
			return false, false, nil
		}
		if err != nil {
			return false, false, err
		}
		err = store.MarkMessageDeleted(tx, m.ID)
		return err == nil, false, err
	}
	if in.ExternalID == "" {
		return false, false, fmt.Errorf("messaging: %s message without an id", ch.Type)
	}
	// No look-up first: the message insert's ON CONFLICT is what tells a
	// redelivery (or the echo of our own send) from a new message, and the
	// look-up cost every new message a round trip. A redelivery still
	// refreshes the contact with what it carries, which it already has.
	m, inboundAt := inboundMessage(ch, in)
	quoted := in.QuotedExternalID
	if in.Reaction != nil {
		quoted = in.Reaction.TargetExternalID
	}
	if quoted != "" {
		if q, err := store.FindByExternalID(tx, ch.ID, quoted); err == nil {
			m.QuotedMessageID = &q.ID
		}
	}
	var mediaRow *store.Media
	if in.Media != nil && (in.Media.ProviderID != "" || in.Media.URL != "") {
		now := store.Now()
		mediaRow = &store.Media{ID: store.NewID(), WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID,
			ProviderID: in.Media.ProviderID, SourceURL: in.Media.URL, MimeType: in.Media.MimeType,
			Filename: in.Media.Filename, SHA256: in.Media.SHA256, State: store.MediaPending, CreatedAt: now, UpdatedAt: now}
		if err := store.InsertMedia(tx, mediaRow); err != nil {
			return false, false, fmt.Errorf("messaging: %w", err)
		}
		m.MediaID = &mediaRow.ID
	}
	// The contact and the message: one statement on PostgreSQL.
	contact, inserted, err := store.UpsertContactWithMessage(tx, ch, in.Customer, inboundAt, m)
	if err != nil {
		return false, false, err
	}
	enqueued, err := s.profileWanted(tx, ch, contact)
	if err != nil {
		return false, false, err
	}
	if !inserted {
		// A redelivery, the echo of our own send, or a concurrent
		// redelivery that committed first.
		if mediaRow != nil {
			if err := store.DeleteMedia(tx, mediaRow.ID); err != nil {
				return false, false, err
			}
		}
		return false, false, nil
	}
	if err := s.messageStored(tx, ch, m); err != nil {
		return false, false, err
	}
	if mediaRow == nil {
		return true, enqueued, nil
	}
	_, err = queue.Enqueue(tx, queue.NewJob{
		Kind: JobFetchMedia, WorkspaceID: ch.WorkspaceID, Lane: ch.ID,
		Payload: fetchMediaJob{MediaID: mediaRow.ID},
	})
	if err != nil {
		return false, false, fmt.Errorf("messaging: enqueue media fetch: %w", err)
	}
	return true, true, nil
}

// inboundMessage is the message row of an inbound event, and the time
// that moves its contact's service window (nil for an echo or an event
// without a time).
func inboundMessage(ch *store.Channel, in *channel.Inbound) (*store.Message, *time.Time) {
	var inboundAt = &in.Timestamp
	if in.Echo || in.Timestamp.IsZero() {
		inboundAt = nil
	}
	m := &store.Message{
		WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID,
		Direction: store.Inbound, Type: string(in.Type), Text: in.Text,
		ExternalID: strPtr(in.ExternalID), QuotedExternalID: in.QuotedExternalID,
		Status: string(channel.StatusReceived),
	}
	if !in.Timestamp.IsZero() {
		ts := in.Timestamp.UTC()
		m.ProviderAt = &ts
	}
	if in.Echo {
		// Sent by a person from the messenger's own app, not through us.
		m.Direction, m.Status = store.Outbound, string(channel.StatusSent)
		m.SentAt = m.ProviderAt
	}
	if len(in.Errors) > 0 {
		e := in.Errors[0]
		m.ErrorCode, m.ErrorTitle, m.ErrorDetail = e.Code, e.Title, cmp.Or(e.Details, e.Message)
	}
	if extra := inboundExtra(in); extra != nil {
		m.Extra = extra
	}
	return m, inboundAt
}

// profileWanted enqueues the reading of a new contact's profile when the
// delivery did not name the customer and the messenger can tell; it
// reports whether it enqueued.
func (s *Service) profileWanted(tx *gorm.DB, ch *store.Channel, contact *store.Contact) (bool, error) {
	if !contact.Created || contact.Name != "" {
		return false, nil
	}
	p, ok := s.registry.ByType(channel.Type(ch.Type))
	if !ok || p.Profiles == nil {
		return false, nil
	}
	if _, err := queue.Enqueue(tx, queue.NewJob{Kind: JobProfile, WorkspaceID: ch.WorkspaceID, Lane: ch.ID,
		Payload: profileJob{ContactID: contact.ID}, MaxAttempts: 5}); err != nil {
		return false, fmt.Errorf("messaging: enqueue profile: %w", err)
	}
	return true, nil
}

// inboundExtra gathers what has no column into the message's JSON extra.
func inboundExtra(in *channel.Inbound) *string {
	extra := map[string]any{}
	for k, v := range in.Extra {
		extra[k] = v
	}
	if in.Location != nil {
		extra["location"] = in.Location
	}
	if in.Reaction != nil {
		extra["reaction"] = in.Reaction
	}
	if in.Forwarded {
		extra["forwarded"] = true
	}
	if in.Media != nil {
		if in.Media.Caption != "" {
			extra["caption"] = in.Media.Caption
		}
		if in.Media.Animated {
			extra["animated"] = true
		}
	}
	if len(in.Errors) > 1 {
		extra["errors"] = in.Errors
	}
	if len(extra) == 0 {
		return nil
	}
	b, err := json.Marshal(extra)
	if err != nil {
		return nil
	}
	s := string(b)
	return &s
}
