package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// DialogNotices is what the unanswered-customer notices record on a
// dialog (migration 00014). Each field holds the waiting_since of the
// waiting period it was done for: a period is "done" when the field equals
// the dialog's WaitingSince, so nothing resets them when the dialog stops
// waiting.
type DialogNotices struct {
	// NotifiedSince: the period whose notices (the "new message" notice
	// and the escalation timer) were armed.
	NotifiedSince *time.Time
	// AnnouncedSince: the period whose "new message" notice went out.
	AnnouncedSince *time.Time
	// EscalatedSince: the period whose escalation went out.
	EscalatedSince *time.Time
	// EscalatedAt is when it went out.
	EscalatedAt *time.Time
}

// DialogArm is a waiting period whose notices ArmDialogNotices has just
// armed.
type DialogArm struct {
	DialogID     string
	WaitingSince time.Time
	// IntegrationSettings is the integration's settings JSON (nil: none),
	// read in the same transaction for the escalation delay.
	IntegrationSettings *string
}

// ArmDialogNotices claims the current waiting period of the dialog of k
// for notices, once: the first call after the dialog began to wait
// returns the period, every later one (the customer's further messages,
// a second ingest racing on PostgreSQL, whose UPDATE waits for the row)
// returns nil. It runs in the ingest transaction after DialogInbound.
//
// The claim and the read of what it claimed are one statement (UPDATE …
// RETURNING, the settings by a subquery: SQLite's RETURNING names only the
// table it updates), run on tx's connection and scanned by hand: it runs
// for every message that starts a waiting period.
func ArmDialogNotices(tx *gorm.DB, k DialogKey) (*DialogArm, error) {
	q := armDialogSQL
	if tx.Dialector.Name() == string(Postgres) {
		q = armDialogPostgres
	}
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, q, k.IntegrationID, k.ChannelID, k.ContactID)
	if err != nil {
		return nil, fmt.Errorf("store: arm dialog notices: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: arm dialog notices: %w", err)
		}
		return nil, nil // armed before, or not waiting
	}
	var arm DialogArm
	var since *time.Time
	if err := rows.Scan(&arm.DialogID, &since, &arm.IntegrationSettings); err != nil {
		return nil, fmt.Errorf("store: armed dialog: %w", err)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("store: armed dialog: %w", err)
	}
	if since == nil {
		return nil, fmt.Errorf("store: armed dialog of contact %s has no waiting time", k.ContactID)
	}
	arm.WaitingSince = since.UTC()
	return &arm, nil
}

const armDialogSQL = `UPDATE dialogs SET notified_since = waiting_since
	WHERE integration_id = ? AND channel_id = ? AND contact_id = ? AND waiting AND waiting_since IS NOT NULL
		AND (notified_since IS NULL OR notified_since <> waiting_since)
	RETURNING id, waiting_since, (SELECT i.settings FROM integrations i WHERE i.id = dialogs.integration_id)`

var armDialogPostgres = numbered(armDialogSQL)

// ArmedDialog returns the id of the dialog of k when it waits in a period
// whose notices were armed, "" otherwise. It runs in an answer's
// transaction before DialogOutbound ends the waiting, so the CRM told of
// the period can hear that it ended.
func ArmedDialog(tx *gorm.DB, k DialogKey) (string, error) {
	var ids []string
	err := tx.Model(&Dialog{}).Where(`integration_id = ? AND channel_id = ? AND contact_id = ? AND waiting
		AND waiting_since IS NOT NULL AND notified_since = waiting_since`, k.IntegrationID, k.ChannelID, k.ContactID).
		Limit(1).Pluck("id", &ids).Error
	if err != nil {
		return "", fmt.Errorf("store: armed dialog: %w", err)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

// Which mark a notice sets; the kinds are routing's.
const (
	noticeAnnounced = "announced_since"
	noticeEscalated = "escalated_since"
)

// DialogsToAnnounce lists the dialogs of a channel within an integration
// whose current waiting period was armed and not yet announced, the
// longest waiting first, up to limit. A listed dialog's NotifiedSince is
// its period: it equals WaitingSince, since a dialog that stopped waiting
// or began another period since it was armed is not listed.
func (s *Store) DialogsToAnnounce(ctx context.Context, integrationID, channelID string, limit int) ([]DialogView, error) {
	return s.dialogsToTell(ctx, integrationID, channelID, noticeAnnounced, nil, limit)
}

// DialogsToEscalate lists the dialogs of a channel within an integration
// that have waited, in an armed period, since before waitingBefore and
// were not escalated for it, the longest waiting first, up to limit.
func (s *Store) DialogsToEscalate(ctx context.Context, integrationID, channelID string, waitingBefore time.Time, limit int) ([]DialogView, error) {
	return s.dialogsToTell(ctx, integrationID, channelID, noticeEscalated, &waitingBefore, limit)
}

func (s *Store) dialogsToTell(ctx context.Context, integrationID, channelID, mark string, before *time.Time, limit int) ([]DialogView, error) {
	q := s.g(ctx).Where(`integration_id = ? AND channel_id = ? AND waiting AND notified_since = waiting_since
		AND (`+mark+` IS NULL OR `+mark+` <> waiting_since)`, integrationID, channelID)
	if before != nil {
		q = q.Where("notified_since <= ?", before.UTC().Truncate(time.Microsecond))
	}
	var ds []Dialog
	if err := q.Order("notified_since, id").Limit(limit).Find(&ds).Error; err != nil {
		return nil, fmt.Errorf("store: dialogs to tell (%s): %w", mark, err)
	}
	return s.dialogViews(ctx, ds)
}

// DialogsLeftToEscalate returns which of the given dialogs wait in an
// armed period not escalated yet, due or not. An escalation timer whose
// dialog is not among them has nothing left to tell (told, answered,
// marked "no reply needed", or gone).
func (s *Store) DialogsLeftToEscalate(ctx context.Context, dialogIDs []string) (map[string]bool, error) {
	left := map[string]bool{}
	if len(dialogIDs) == 0 {
		return left, nil
	}
	var ids []string
	err := s.g(ctx).Model(&Dialog{}).
		Where(`id IN ? AND waiting AND notified_since = waiting_since
			AND (`+noticeEscalated+` IS NULL OR `+noticeEscalated+` <> waiting_since)`, dialogIDs).
		Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("store: dialogs left to escalate: %w", err)
	}
	for _, id := range ids {
		left[id] = true
	}
	return left, nil
}

// MarkDialogAnnounced records that the "new message" notice of the
// waiting period that began at since went out. It changes nothing and
// returns false when the dialog no longer waits since then, or that
// period was marked already.
func (s *Store) MarkDialogAnnounced(ctx context.Context, dialogID string, since time.Time) (bool, error) {
	return s.markDialog(ctx, dialogID, since, noticeAnnounced, map[string]any{})
}

// MarkDialogEscalated records that the waiting period that began at since
// was escalated, and when. It changes nothing and returns false when the
// dialog no longer waits since then, or that period was marked already.
func (s *Store) MarkDialogEscalated(ctx context.Context, dialogID string, since time.Time) (bool, error) {
	return s.markDialog(ctx, dialogID, since, noticeEscalated, map[string]any{"escalated_at": Now()})
}

func (s *Store) markDialog(ctx context.Context, dialogID string, since time.Time, mark string, set map[string]any) (bool, error) {
	set[mark] = gorm.Expr("waiting_since")
	set["updated_at"] = Now()
	res := s.g(ctx).Model(&Dialog{}).
		Where(`id = ? AND waiting AND waiting_since = ? AND (`+mark+` IS NULL OR `+mark+` <> waiting_since)`,
			dialogID, since.UTC().Truncate(time.Microsecond)).
		Updates(set)
	if res.Error != nil {
		return false, fmt.Errorf("store: mark dialog %s: %w", mark, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// FirstInboundSince returns the customer's first message at or after
// since: the one that began a waiting period, which a notice quotes.
func (s *Store) FirstInboundSince(ctx context.Context, contactID string, since time.Time) (*MessageView, error) {
	var m Message
	err := s.g(ctx).Where("contact_id = ? AND direction = ? AND created_at >= ?", contactID, Inbound, since.UTC().Truncate(time.Microsecond)).
		Order("created_at, id").First(&m).Error
	if err != nil {
		return nil, notFound(err)
	}
	vs, err := s.views(ctx, []Message{m})
	if err != nil {
		return nil, err
	}
	return &vs[0], nil
}

// ArmedPeriod is the start of the dialog's current waiting period when it
// waits and its notices were armed; nil otherwise.
func (d *Dialog) ArmedPeriod() *time.Time {
	if !d.Waiting || d.WaitingSince == nil || d.NotifiedSince == nil || !d.NotifiedSince.Equal(*d.WaitingSince) {
		return nil
	}
	return d.WaitingSince
}

// EscalatedFor says whether the period that began at since was escalated.
func (d *Dialog) EscalatedFor(since time.Time) bool {
	return d.EscalatedSince != nil && d.EscalatedSince.Equal(since.Truncate(time.Microsecond))
}
