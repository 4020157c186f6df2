package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
)

// MaxDialogsPerHour bounds a workspace's dialogs_per_hour_limit: far above
// what Meta lets one number open, low enough to be a mistake beyond it.
const MaxDialogsPerHour = 100000

// DialogAdmission asks whether an outbound message may go out under its
// channel's dialog counter: a dialog is a (channel, customer) pair, counted
// once per hour of the workspace's clock.
type DialogAdmission struct {
	ChannelID string
	ContactID string
	// MessageID is the message asking; it is marked held or released in
	// the same transaction as the count, so the channel's page never shows
	// a count and a waiting list that disagree.
	MessageID string
	// HourStart is the start of the current hour on the workspace's clock
	// (as an instant); every worker computes the same one.
	HourStart time.Time
	// Limit is the workspace's dialogs per hour; 0 counts without a cap.
	Limit int
	// Retry is when a held message is tried again (the next hour's start).
	Retry time.Time
}

// DialogVerdict is AdmitDialog's answer.
type DialogVerdict struct {
	// Admitted: the message may go out now.
	Admitted bool
	// Counted: this call opened the customer's dialog for the hour (false
	// when it was already counted, or when the message is held).
	Counted bool
	// ThisHour is the channel's dialogs counted in the hour.
	ThisHour int
}

// errCountedMeanwhile rolls back an increment whose customer another
// transaction counted first.
var errCountedMeanwhile = errors.New("store: dialog counted meanwhile")

// AdmitDialog counts the message's dialog in its channel's hour if there is
// room, exactly once however many workers and instances ask at once:
//
//   - a customer already counted in the hour is admitted without a count;
//   - otherwise the hour's row is raised by a conditional UPDATE (dialogs <
//     limit). The UPDATE locks the row, so concurrent callers queue on it and
//     each sees the previous one's committed count: of two callers that want
//     the last slot exactly one raises it, the other matches no row;
//   - a caller that finds no room is held: the message's held_until is set
//     to Retry.
//
// The first count in a channel's new hour deletes the channel's older hours:
// only the current one is ever read.
func (s *Store) AdmitDialog(ctx context.Context, a DialogAdmission) (DialogVerdict, error) {
	hour := a.HourStart.UTC().Truncate(time.Microsecond)
	var v DialogVerdict
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		v = DialogVerdict{}
		var known int64
		if err := tx.Raw(`SELECT COUNT(*) FROM channel_dialogs WHERE channel_id = ? AND hour_start = ? AND contact_id = ?`,
			a.ChannelID, hour, a.ContactID).Scan(&known).Error; err != nil {
			return fmt.Errorf("store: dialog lookup: %w", err)
		}
		if known > 0 {
			v.Admitted = true
			if err := release(tx, a.MessageID); err != nil {
				return err
			}
			return thisHour(tx, a.ChannelID, hour, &v.ThisHour)
		}
		res := tx.Exec(`INSERT INTO channel_dialog_hours (channel_id, hour_start, dialogs) VALUES (?, ?, 0)
			ON CONFLICT DO NOTHING`, a.ChannelID, hour)
		if res.Error != nil {
			return fmt.Errorf("store: dialog hour: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			for _, table := range []string{"channel_dialogs", "channel_dialog_hours"} {
				if err := tx.Exec(`DELETE FROM `+table+` WHERE channel_id = ? AND hour_start < ?`, a.ChannelID, hour).Error; err != nil {
					return fmt.Errorf("store: prune %s: %w", table, err)
				}
			}
		}
		res = tx.Exec(`UPDATE channel_dialog_hours SET dialogs = dialogs + 1
			WHERE channel_id = ? AND hour_start = ? AND (? = 0 OR dialogs < ?)`, a.ChannelID, hour, a.Limit, a.Limit)
		if res.Error != nil {
			return fmt.Errorf("store: count dialog: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			ins := tx.Exec(`INSERT INTO channel_dialogs (channel_id, hour_start, contact_id, created_at) VALUES (?, ?, ?, ?)
				ON CONFLICT DO NOTHING`, a.ChannelID, hour, a.ContactID, Now())
			if ins.Error != nil {
				return fmt.Errorf("store: count dialog: %w", ins.Error)
			}
			if ins.RowsAffected == 0 {
				// Another transaction counted this customer between the
				// lookup and the lock: its count stands, not this one.
				return errCountedMeanwhile
			}
			v.Admitted, v.Counted = true, true
			if err := release(tx, a.MessageID); err != nil {
				return err
			}
		} else if a.MessageID != "" {
			until := a.Retry.UTC().Truncate(time.Microsecond)
			if err := tx.Exec(`UPDATE messages SET held_until = ? WHERE id = ?`, until, a.MessageID).Error; err != nil {
				return fmt.Errorf("store: hold message: %w", err)
			}
		}
		return thisHour(tx, a.ChannelID, hour, &v.ThisHour)
	})
	if errors.Is(err, errCountedMeanwhile) {
		return s.AdmitDialog(ctx, a) // finds the customer counted now
	}
	if err != nil {
		return DialogVerdict{}, err
	}
	return v, nil
}

// thisHour reads the dialogs counted in a channel's hour (0 if none).
func thisHour(q *gorm.DB, channelID string, hour time.Time, n *int) error {
	var counts []int
	if err := q.Raw(`SELECT dialogs FROM channel_dialog_hours WHERE channel_id = ? AND hour_start = ?`,
		channelID, hour).Scan(&counts).Error; err != nil {
		return fmt.Errorf("store: dialogs this hour: %w", err)
	}
	*n = 0
	if len(counts) > 0 {
		*n = counts[0]
	}
	return nil
}

// release clears a message's hold once it is admitted.
func release(tx *gorm.DB, messageID string) error {
	if messageID == "" {
		return nil
	}
	if err := tx.Exec(`UPDATE messages SET held_until = NULL WHERE id = ? AND held_until IS NOT NULL`, messageID).Error; err != nil {
		return fmt.Errorf("store: release message: %w", err)
	}
	return nil
}

// DialogStats is what a channel's dialog counter shows.
type DialogStats struct {
	// ThisHour is the dialogs counted in the hour starting at the given
	// instant.
	ThisHour int
	// Waiting counts the queued messages the counter holds back: the held
	// ones and those queued behind them to the same customers (they go out
	// in order, so they wait as long).
	Waiting int
}

// DialogStats reads a channel's dialog counter for the hour starting at
// hourStart.
func (s *Store) DialogStats(ctx context.Context, channelID string, hourStart time.Time) (DialogStats, error) {
	hour := hourStart.UTC().Truncate(time.Microsecond)
	var st DialogStats
	if err := thisHour(s.g(ctx), channelID, hour, &st.ThisHour); err != nil {
		return st, err
	}
	queued := string(channel.StatusQueued)
	err := s.g(ctx).Raw(`SELECT COUNT(*) FROM messages
		WHERE channel_id = ? AND direction = ? AND status = ? AND contact_id IN (
			SELECT h.contact_id FROM messages h
			WHERE h.channel_id = ? AND h.held_until IS NOT NULL AND h.status = ?)`,
		channelID, Outbound, queued, channelID, queued).Scan(&st.Waiting).Error
	if err != nil {
		return st, fmt.Errorf("store: dialog stats: %w", err)
	}
	return st, nil
}

// HeldDialog is a channel's customer whose queued messages the dialog
// counter holds back.
type HeldDialog struct {
	ChannelID string
	ContactID string
}

// HeldDialogs lists the dialogs held back in a workspace's channels.
func (s *Store) HeldDialogs(ctx context.Context, workspaceID string) ([]HeldDialog, error) {
	var out []HeldDialog
	err := s.g(ctx).Raw(`SELECT DISTINCT channel_id, contact_id FROM messages
		WHERE workspace_id = ? AND held_until IS NOT NULL AND status = ?`,
		workspaceID, string(channel.StatusQueued)).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: held dialogs: %w", err)
	}
	return out, nil
}
