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
// returns nil. It runs in the ingest transaction after DialogInbound, and
// costs one statement when nothing is armed.
func ArmDialogNotices(tx *gorm.DB, k DialogKey) (*DialogArm, error) {
	res := tx.Exec(`UPDATE dialogs SET notified_since = waiting_since
		WHERE integration_id = ? AND channel_id = ? AND contact_id = ? AND waiting AND waiting_since IS NOT NULL
			AND (notified_since IS NULL OR notified_since <> waiting_since)`,
		k.IntegrationID, k.ChannelID, k.ContactID)
	if res.Error != nil {
		return nil, fmt.Errorf("store: arm dialog notices: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	var row struct {
		ID           string
		WaitingSince *time.Time
		Settings     *string
	}
	err := tx.Raw(`SELECT dialogs.id, dialogs.waiting_since, integrations.settings FROM dialogs
		JOIN integrations ON integrations.id = dialogs.integration_id
		WHERE dialogs.integration_id = ? AND dialogs.channel_id = ? AND dialogs.contact_id = ?`,
		k.IntegrationID, k.ChannelID, k.ContactID).Scan(&row).Error
	if err != nil {
		return nil, fmt.Errorf("store: armed dialog: %w", err)
	}
	if row.ID == "" || row.WaitingSince == nil {
		return nil, fmt.Errorf("store: armed dialog of contact %s vanished in its own transaction", k.ContactID)
	}
	return &DialogArm{DialogID: row.ID, WaitingSince: row.WaitingSince.UTC(), IntegrationSettings: row.Settings}, nil
}

// MarkDialogEscalated records that the waiting period that began at since
// was escalated. It changes nothing and returns false when the dialog no
// longer waits since then, or that period was marked already.
func (s *Store) MarkDialogEscalated(ctx context.Context, dialogID string, since time.Time) (bool, error) {
	now := Now()
	res := s.g(ctx).Exec(`UPDATE dialogs SET escalated_since = waiting_since, escalated_at = ?, updated_at = ?
		WHERE id = ? AND waiting AND waiting_since = ? AND (escalated_since IS NULL OR escalated_since <> waiting_since)`,
		now, now, dialogID, since.UTC().Truncate(time.Microsecond))
	if res.Error != nil {
		return false, fmt.Errorf("store: mark dialog escalated: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// WaitingSinceIs says whether the dialog still waits in the period that
// began at since: an answer, "no reply needed" or a later period all make
// it false. Times are compared as the store keeps them (microseconds).
func (d *Dialog) WaitingSinceIs(since time.Time) bool {
	return d.Waiting && d.WaitingSince != nil && d.WaitingSince.Equal(since.Truncate(time.Microsecond))
}

// EscalatedFor says whether the period that began at since was escalated.
func (d *Dialog) EscalatedFor(since time.Time) bool {
	return d.EscalatedSince != nil && d.EscalatedSince.Equal(since.Truncate(time.Microsecond))
}
