package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// States of a mirror batch.
const (
	// BatchOpen: the window still collects; nothing is assigned yet.
	BatchOpen = "open"
	// BatchClosed: its messages are assigned; nothing was sent.
	BatchClosed = "closed"
	// BatchSending: a write to the CRM was attempted and may have landed.
	// Whoever sends it again first looks for it in the CRM.
	BatchSending = "sending"
	// BatchSent: written, and its messages are linked as mirrored.
	BatchSent = "sent"
)

// MirrorBatch is one window of one binding (see migration 00013).
type MirrorBatch struct {
	ID            string `gorm:"primaryKey"`
	WorkspaceID   string
	IntegrationID string
	BindingID     string
	ChannelID     string
	Mode          string
	OpensAt       time.Time
	ClosesAt      time.Time
	State         string
	ClosedAt      *time.Time
	Messages      int
	Attempts      int
	SentAt        *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TableName keeps gorm off its plural guess.
func (MirrorBatch) TableName() string { return "mirror_batches" }

// MirrorBatchItem places one customer message in one batch.
type MirrorBatchItem struct {
	BindingID string `gorm:"primaryKey"`
	MessageID string `gorm:"primaryKey"`
	BatchID   string
	ContactID string
}

// TableName keeps gorm off its plural guess.
func (MirrorBatchItem) TableName() string { return "mirror_batch_items" }

// OpenMirrorBatch makes sure the binding has an open batch for the window
// [opens, closes), inside the ingest transaction; created says this call
// made it (the caller then schedules its closing). An existing open batch
// is touched, which holds its row until tx commits: a closer that wants to
// close it waits for this message to be committed and so sees it; a batch
// closed meanwhile is replaced by a new open one, so the message is never
// left without a window.
func OpenMirrorBatch(tx *gorm.DB, b *ChannelBinding, mode string, opens, closes time.Time) (created bool, err error) {
	now := Now()
	opens, closes = opens.UTC().Truncate(time.Microsecond), closes.UTC().Truncate(time.Microsecond)
	for range 3 {
		nb := MirrorBatch{ID: NewID(), WorkspaceID: b.WorkspaceID, IntegrationID: b.IntegrationID, BindingID: b.ID,
			ChannelID: b.ChannelID, Mode: mode, OpensAt: opens, ClosesAt: closes, State: BatchOpen, CreatedAt: now, UpdatedAt: now}
		res := tx.Exec(`INSERT INTO mirror_batches (id, workspace_id, integration_id, binding_id, channel_id, mode, opens_at, closes_at,
				state, messages, attempts, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?) ON CONFLICT DO NOTHING`,
			nb.ID, nb.WorkspaceID, nb.IntegrationID, nb.BindingID, nb.ChannelID, nb.Mode, nb.OpensAt, nb.ClosesAt, nb.State, now, now)
		if res.Error != nil {
			return false, fmt.Errorf("store: open mirror batch: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			return true, nil
		}
		// Open already: take its row lock (see above). Zero rows means a
		// closer closed it between the two statements: open a new one.
		res = tx.Model(&MirrorBatch{}).Where("binding_id = ? AND closes_at = ? AND state = ?", b.ID, closes, BatchOpen).
			Update("updated_at", now)
		if res.Error != nil {
			return false, fmt.Errorf("store: touch mirror batch: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			return false, nil
		}
	}
	return false, fmt.Errorf("store: open mirror batch of binding %s: closed under us three times", b.ID)
}

// OpenMirrorBatches lists an integration's open batches, oldest window
// first; with until set only those whose window ended by then.
func OpenMirrorBatches(tx *gorm.DB, integrationID string, until *time.Time) ([]MirrorBatch, error) {
	q := tx.Where("integration_id = ? AND state = ?", integrationID, BatchOpen)
	if until != nil {
		q = q.Where("closes_at <= ?", until.UTC().Truncate(time.Microsecond))
	}
	var out []MirrorBatch
	if err := q.Order("closes_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: open mirror batches: %w", err)
	}
	return out, nil
}

// CloseMirrorBatch closes an open batch: it takes the batch's row (a
// concurrent closer waits here, then finds it closed and gets false), and
// assigns it every message to mirror (the customers', and ours marked with
// MirrorOutbound for the integration) of the binding's channel created since
// the binding and before upto (zero: no bound) that is in no batch of the
// binding yet and not linked as mirrored (linkKind) to the integration. A
// batch that got no message is marked sent: there is nothing to write.
// It returns whether this call closed it and how many messages it took.
func CloseMirrorBatch(tx *gorm.DB, batch *MirrorBatch, since, upto time.Time, linkKind string) (closed bool, n int, err error) {
	now := Now()
	res := tx.Model(&MirrorBatch{}).Where("id = ? AND state = ?", batch.ID, BatchOpen).
		Updates(map[string]any{"state": BatchClosed, "closed_at": now, "updated_at": now})
	if res.Error != nil {
		return false, 0, fmt.Errorf("store: close mirror batch: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return false, 0, nil
	}
	if upto.IsZero() {
		upto = now.Add(time.Hour) // every committed message
	}
	ins := tx.Exec(`INSERT INTO mirror_batch_items (binding_id, message_id, batch_id, contact_id)
		SELECT ?, m.id, ?, m.contact_id FROM messages m
		WHERE m.channel_id = ? AND `+toMirror+` AND m.created_at >= ? AND m.created_at < ?
			AND NOT EXISTS (SELECT 1 FROM mirror_batch_items i WHERE i.binding_id = ? AND i.message_id = m.id)
			AND NOT EXISTS (SELECT 1 FROM crm_links l WHERE l.integration_id = ? AND l.kind = ? AND l.local_id = m.id)
			AND `+ownBranchMessage+`
		ON CONFLICT DO NOTHING`,
		batch.BindingID, batch.ID, batch.ChannelID, batch.IntegrationID, since.UTC().Truncate(time.Microsecond), upto.UTC().Truncate(time.Microsecond),
		batch.BindingID, batch.IntegrationID, linkKind, batch.IntegrationID)
	if ins.Error != nil {
		return false, 0, fmt.Errorf("store: assign mirror batch: %w", ins.Error)
	}
	n = int(ins.RowsAffected)
	set := map[string]any{"messages": n}
	if n == 0 {
		set["state"], set["sent_at"] = BatchSent, now
	}
	if err := tx.Model(&MirrorBatch{}).Where("id = ?", batch.ID).Updates(set).Error; err != nil {
		return false, 0, fmt.Errorf("store: close mirror batch: %w", err)
	}
	batch.State, batch.ClosedAt, batch.Messages = BatchClosed, &now, n
	if n == 0 {
		batch.State = BatchSent
	}
	return true, n, nil
}

// PendingMirrorBatches lists an integration's batches closed but not sent
// (closed or sending), oldest window first, up to limit.
func (s *Store) PendingMirrorBatches(ctx context.Context, integrationID string, limit int) ([]MirrorBatch, error) {
	var out []MirrorBatch
	err := s.g(ctx).Where("integration_id = ? AND state IN ?", integrationID, []string{BatchClosed, BatchSending}).
		Order("closes_at, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: pending mirror batches: %w", err)
	}
	return out, nil
}

// MirrorBatchMessageIDs lists a batch's messages, oldest first.
func (s *Store) MirrorBatchMessageIDs(ctx context.Context, batchID string) ([]string, error) {
	var ids []string
	err := s.g(ctx).Table("mirror_batch_items").Where("batch_id = ?", batchID).
		Order("message_id").Pluck("message_id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("store: mirror batch messages: %w", err)
	}
	return ids, nil
}

// MarkMirrorBatchesSending records, before the CRM is called, that a write
// of these batches may land; each attempt is counted.
func (s *Store) MarkMirrorBatchesSending(ctx context.Context, ids []string) error {
	now := Now()
	err := s.g(ctx).Model(&MirrorBatch{}).Where("id IN ? AND state IN ?", ids, []string{BatchClosed, BatchSending}).
		Updates(map[string]any{"state": BatchSending, "attempts": gorm.Expr("attempts + 1"), "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("store: mark mirror batches sending: %w", err)
	}
	return nil
}

// MarkMirrorBatchSent records a batch as written, in tx (with the links of
// its messages).
func MarkMirrorBatchSent(tx *gorm.DB, id string) error {
	now := Now()
	err := tx.Model(&MirrorBatch{}).Where("id = ?", id).
		Updates(map[string]any{"state": BatchSent, "sent_at": now, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("store: mark mirror batch sent: %w", err)
	}
	return nil
}

// UnmirroredInbound lists, oldest first, the channel's messages to mirror
// (the customers', and ours marked with MirrorOutbound) since the binding that are not linked as mirrored to the integration,
// not placed in a batch of the binding (those belong to their batch) and,
// on a channel in branch mode, of the integration's own customers.
func (s *Store) UnmirroredInbound(ctx context.Context, integrationID, bindingID, linkKind, channelID string, since time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.g(ctx).Table("messages AS m").
		Where("m.channel_id = ? AND m.created_at >= ?", channelID, since).
		Where(toMirror, integrationID).
		Where("NOT EXISTS (SELECT 1 FROM crm_links l WHERE l.integration_id = ? AND l.kind = ? AND l.local_id = m.id)", integrationID, linkKind).
		Where("NOT EXISTS (SELECT 1 FROM mirror_batch_items i WHERE i.binding_id = ? AND i.message_id = m.id)", bindingID).
		Where(ownBranchMessage, integrationID).
		Order("m.id").Limit(limit).Pluck("m.id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("store: unmirrored messages: %w", err)
	}
	return ids, nil
}

// MirrorOutbound is the crm_links kind that marks an outbound message for
// mirroring into an integration (local: the message, remote: the
// binding): routing writes it, when the integration's connector mirrors
// managers' messages, in the transaction that stores the message. Only
// marked outbound messages are mirrored, so a connector that starts
// mirroring them does not pour the earlier ones into the CRM.
const MirrorOutbound = "mirror_out"

// toMirror is the condition, on a message aliased m and an integration id
// parameter, that the message is one to mirror: the customer's, or ours
// marked for that integration.
const toMirror = `(m.direction = '` + Inbound + `' OR EXISTS (SELECT 1 FROM crm_links o WHERE o.integration_id = ? AND o.kind = '` + MirrorOutbound + `' AND o.local_id = m.id))`

// WorkspaceTimezone reads a workspace's clock name in tx ("" when unset).
func WorkspaceTimezone(tx *gorm.DB, workspaceID string) (string, error) {
	var tz string
	err := tx.Raw("SELECT timezone FROM workspaces WHERE id = ?", workspaceID).Scan(&tz).Error
	if err != nil {
		return "", fmt.Errorf("store: workspace timezone: %w", err)
	}
	return tz, nil
}

// MoveMirrorBatch hands a batch that is no longer open to another binding
// of its integration and channel: the binding that replaced its own after
// an unbind (or an uninstall) and a new bind. Only a batch no longer open
// moves, so it never meets the new binding's open batch of the same
// window in the one-open-batch-per-window index.
func MoveMirrorBatch(tx *gorm.DB, id, bindingID string) error {
	err := tx.Model(&MirrorBatch{}).Where("id = ? AND state <> ?", id, BatchOpen).
		Updates(map[string]any{"binding_id": bindingID, "updated_at": Now()}).Error
	if err != nil {
		return fmt.Errorf("store: move mirror batch: %w", err)
	}
	return nil
}

// MessagesToMirror reads, oldest first and in one query (with one each for
// their customers, files and quotes), those of the messages ids that are
// not linked as mirrored (linkKind) to the integration yet and not placed
// in a batch of the binding (written with the batch, after a switch to
// hourly or daily); the rest are left out.
func (s *Store) MessagesToMirror(ctx context.Context, integrationID, bindingID, linkKind string, ids []string) ([]MessageView, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var ms []Message
	err := s.g(ctx).Where("id IN ?", ids).
		Where("NOT EXISTS (SELECT 1 FROM crm_links l WHERE l.integration_id = ? AND l.kind = ? AND l.local_id = messages.id)", integrationID, linkKind).
		Where("NOT EXISTS (SELECT 1 FROM mirror_batch_items i WHERE i.binding_id = ? AND i.message_id = messages.id)", bindingID).
		Order("id").Find(&ms).Error
	if err != nil {
		return nil, fmt.Errorf("store: messages to mirror: %w", err)
	}
	return s.views(ctx, ms)
}

// MarkMirrorAttempts records, before a CRM is called with them, that a
// write of these messages to the integration may land (crm_links of
// attemptKind, remote: the binding), and returns those an earlier call
// was already attempted for: its outcome is unknown (the process died, or
// the answer was lost), so they may be in the CRM already.
func (s *Store) MarkMirrorAttempts(ctx context.Context, integrationID, bindingID, attemptKind string, ids []string) (map[string]bool, error) {
	since, err := s.MarkAttempts(ctx, integrationID, bindingID, attemptKind, ids)
	if err != nil {
		return nil, err
	}
	inDoubt := make(map[string]bool, len(since))
	for id := range since {
		inDoubt[id] = true
	}
	return inDoubt, nil
}

// MarkAttempts is MarkMirrorAttempts that also tells, of each id in
// doubt, when its first unfinished attempt was marked: a CRM call made
// since then may have created what the attempt was for, so what was
// created since is what to look for.
func (s *Store) MarkAttempts(ctx context.Context, integrationID, bindingID, attemptKind string, ids []string) (map[string]time.Time, error) {
	inDoubt := map[string]time.Time{}
	if len(ids) == 0 {
		return inDoubt, nil
	}
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		var seen []CRMLink
		if err := tx.Where("integration_id = ? AND kind = ? AND local_id IN ?", integrationID, attemptKind, ids).
			Find(&seen).Error; err != nil {
			return err
		}
		for _, l := range seen {
			inDoubt[l.LocalID] = l.CreatedAt
		}
		now := Now()
		var rows []CRMLink
		for _, id := range ids {
			if _, marked := inDoubt[id]; !marked {
				rows = append(rows, CRMLink{IntegrationID: integrationID, Kind: attemptKind, LocalID: id, RemoteID: bindingID, CreatedAt: now})
			}
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("store: mark attempts: %w", err)
	}
	return inDoubt, nil
}

// DropAttempts removes, in tx, the attempt marks (attemptKind) of
// messages whose CRM call was not made after all.
func DropAttempts(tx *gorm.DB, integrationID, attemptKind string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := tx.Exec(`DELETE FROM crm_links WHERE integration_id = ? AND kind = ? AND local_id IN ?`, integrationID, attemptKind, ids).Error
	if err != nil {
		return fmt.Errorf("store: drop attempts: %w", err)
	}
	return nil
}

// MarkMirrored links, in tx, messages as mirrored (linkKind, remote: the
// binding) to the integration and drops their attempt marks (attemptKind).
func MarkMirrored(tx *gorm.DB, integrationID, bindingID, linkKind, attemptKind string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := Now()
	rows := make([]CRMLink, len(ids))
	for i, id := range ids {
		rows[i] = CRMLink{IntegrationID: integrationID, Kind: linkKind, LocalID: id, RemoteID: bindingID, CreatedAt: now}
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
		return fmt.Errorf("store: mark mirrored: %w", err)
	}
	return DropAttempts(tx, integrationID, attemptKind, ids)
}
