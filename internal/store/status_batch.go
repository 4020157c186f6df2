package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
)

// StatusRow is one status webhook for ApplyStatuses: the channel and the
// update it carries. ApplyStatuses fills Result and Message.
type StatusRow struct {
	ChannelID string
	Update    channel.StatusUpdate

	Result StatusResult
	// Message is what ApplyStatus would have returned: the message as it
	// stood before this update, with Status moved when Result is
	// StatusApplied; nil for an orphan. Each row has its own copy.
	Message *Message
}

// ApplyStatuses is ApplyStatus for many updates at once, with the same
// end state and the same per-row results as calling ApplyStatus for each
// row in order: a status never goes back (read stays read after a late
// delivered), a status's time is kept even when the status itself is
// stale, a failed status keeps its error, and an update for a message we
// do not know is kept as an orphan. Group commit hands it the statuses of
// a group of webhook deliveries.
//
// ApplyStatus costs four statements per update (lock, read, time, status);
// here the whole batch costs a lock statement (PostgreSQL), one read, the
// writes and one orphan insert. The updates are folded in Go, message by
// message, by the rule ApplyStatus's UPDATE enforces in SQL; the writes
// then check that each message still has the status that was read, and
// fail the batch if one moved meanwhile (a writer that does not take the
// external-id lock, such as MarkFailed), so that the caller redoes the
// work one by one. On PostgreSQL the writes are one UPDATE … FROM
// (VALUES …); on SQLite, in process with one writer, one UPDATE per
// changed message.
func ApplyStatuses(tx *gorm.DB, rows []StatusRow) error {
	if len(rows) == 0 {
		return nil
	}
	pg := tx.Dialector.Name() == string(Postgres)
	keys := make([]msgKey, 0, len(rows))
	for i := range rows {
		keys = append(keys, msgKey{rows[i].ChannelID, rows[i].Update.ExternalID})
	}
	slices.SortFunc(keys, func(a, b msgKey) int { return strings.Compare(a.lock(), b.lock()) })
	keys = slices.Compact(keys)
	if pg {
		if err := lockExternalIDs(tx, keys); err != nil {
			return err
		}
	}
	found, err := messagesByExternalID(tx, keys)
	if err != nil {
		return err
	}
	now := Now()
	type state struct {
		cur     Message
		read    string // the status read, which the write checks
		changed bool
	}
	states := make(map[msgKey]*state, len(found))
	for k, m := range found {
		states[k] = &state{cur: *m, read: m.Status}
	}
	var orphans []OrphanStatus
	for i := range rows {
		r := &rows[i]
		st, ok := states[msgKey{r.ChannelID, r.Update.ExternalID}]
		if !ok {
			o := OrphanStatus{ChannelID: r.ChannelID, ExternalID: r.Update.ExternalID, Status: string(r.Update.Status),
				OccurredAt: r.Update.Timestamp, CreatedAt: now}
			if e := r.Update.Error; e != nil {
				o.ErrorCode, o.ErrorTitle, o.ErrorDetail = e.Code, e.Title, errDetail(e)
			}
			orphans = append(orphans, o)
			r.Result, r.Message = StatusOrphan, nil
			continue
		}
		// ApplyStatus hands back the row it read before its writes.
		snapshot := st.cur
		r.Message = &snapshot
		if fold(&st.cur, r.Update, now) {
			st.changed = true
		}
		if st.cur.Status != snapshot.Status {
			r.Result = StatusApplied
			r.Message.Status = st.cur.Status
		} else {
			r.Result = StatusStale
		}
	}
	var changed []*Message
	var readStatus []string
	for _, k := range keys {
		if st, ok := states[k]; ok && st.changed {
			st.cur.UpdatedAt = now
			changed = append(changed, &st.cur)
			readStatus = append(readStatus, st.read)
		}
	}
	if pg {
		err = writeStatusesPostgres(tx, changed, readStatus)
	} else {
		err = writeStatusesSQLite(tx, changed, readStatus)
	}
	if err != nil {
		return err
	}
	return insertOrphans(tx, orphans)
}

// msgKey names a message by its channel and external id.
type msgKey struct{ channelID, externalID string }

// lock is the external-id lock's key, lockExternalID's.
func (k msgKey) lock() string { return k.channelID + ":" + k.externalID }

// fold applies u to m in memory as advance applies it to the row: the
// status's time is set when it is unset, then the status moves when it
// is a step forward, with the error of a failed status. It reports
// whether anything changed.
func fold(m *Message, u channel.StatusUpdate, now time.Time) bool {
	ts := u.Timestamp
	if ts.IsZero() {
		ts = now
	}
	changed := false
	var col **time.Time
	switch u.Status {
	case channel.StatusSent:
		col = &m.SentAt
	case channel.StatusDelivered:
		col = &m.DeliveredAt
	case channel.StatusRead:
		col = &m.ReadAt
	case channel.StatusFailed:
		col = &m.FailedAt
	}
	if col != nil && *col == nil {
		t := ts
		*col = &t
		changed = true
	}
	if !slices.Contains(predecessors(u.Status), m.Status) {
		return changed
	}
	m.Status = string(u.Status)
	if u.Status == channel.StatusFailed && u.Error != nil {
		m.ErrorCode, m.ErrorTitle, m.ErrorDetail = u.Error.Code, u.Error.Title, errDetail(u.Error)
	}
	return true
}

// lockExternalIDs takes lockExternalID's lock for every key, in one
// statement, in the keys' order (sorted by the caller, so that two
// batches sharing keys take them in the same order and cannot deadlock).
// It is its own statement: a statement's snapshot is taken when it
// starts, so the read that follows must start after the locks are held
// to see what their previous holders committed.
func lockExternalIDs(tx *gorm.DB, keys []msgKey) error {
	locks := make([]string, len(keys))
	for i, k := range keys {
		locks[i] = k.lock()
	}
	_, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context,
		`SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k`, locks)
	if err != nil {
		return fmt.Errorf("store: lock external ids: %w", err)
	}
	return nil
}

// messageColumns are every column of messages, in Message's field order;
// messageFields points at them. A column added to Message must be added to both
// (TestApplyStatusesReadsEveryField compares every field with gorm's
// read).
const messageColumns = `id, workspace_id, channel_id, contact_id, direction, type, text, media_id, extra, template,
	external_id, quoted_message_id, quoted_external_id, human_agent, status, error_code, error_title, error_detail,
	provider_at, sent_at, delivered_at, read_at, failed_at, held_until, created_at, updated_at`

func messageFields(m *Message) []any {
	return []any{&m.ID, &m.WorkspaceID, &m.ChannelID, &m.ContactID, &m.Direction, &m.Type, &m.Text, &m.MediaID, &m.Extra, &m.Template,
		&m.ExternalID, &m.QuotedMessageID, &m.QuotedExternalID, &m.HumanAgent, &m.Status, &m.ErrorCode, &m.ErrorTitle, &m.ErrorDetail,
		&m.ProviderAt, &m.SentAt, &m.DeliveredAt, &m.ReadAt, &m.FailedAt, &m.HeldUntil, &m.CreatedAt, &m.UpdatedAt}
}

// messagesByExternalID reads the messages the keys name, in one
// statement: per channel, external_id IN (…), which the unique
// (channel_id, external_id) index answers on both engines.
func messagesByExternalID(tx *gorm.DB, keys []msgKey) (map[msgKey]*Message, error) {
	var q strings.Builder
	q.WriteString("SELECT " + messageColumns + " FROM messages WHERE ")
	args := make([]any, 0, len(keys)+4)
	for i := 0; i < len(keys); {
		j := i
		for j < len(keys) && keys[j].channelID == keys[i].channelID {
			j++
		}
		if i > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(channel_id = ? AND external_id IN (")
		args = append(args, keys[i].channelID)
		for n := i; n < j; n++ {
			if n > i {
				q.WriteString(", ")
			}
			q.WriteByte('?')
			args = append(args, keys[n].externalID)
		}
		q.WriteString("))")
		i = j
	}
	sql := q.String()
	if tx.Dialector.Name() == string(Postgres) {
		sql = numbered(sql)
	}
	res, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("store: read messages by external id: %w", err)
	}
	defer res.Close()
	out := make(map[msgKey]*Message, len(keys))
	for res.Next() {
		var m Message
		if err := res.Scan(messageFields(&m)...); err != nil {
			return nil, fmt.Errorf("store: read messages by external id: %w", err)
		}
		out[msgKey{m.ChannelID, *m.ExternalID}] = &m
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("store: read messages by external id: %w", err)
	}
	return out, nil
}

// errStatusMoved fails a batch whose message changed status between its
// read and its write.
var errStatusMoved = errors.New("store: a message's status changed while a batch of statuses was applied to it")

// statusSet is what a status write sets: the status, its times (each
// kept when already set, as advance's "IS NULL" update keeps it), the
// error and updated_at.
const statusSet = `status = %[1]sstatus, sent_at = COALESCE(messages.sent_at, %[1]ssent_at),
	delivered_at = COALESCE(messages.delivered_at, %[1]sdelivered_at), read_at = COALESCE(messages.read_at, %[1]sread_at),
	failed_at = COALESCE(messages.failed_at, %[1]sfailed_at),
	error_code = %[1]serror_code, error_title = %[1]serror_title, error_detail = %[1]serror_detail, updated_at = %[1]supdated_at`

// writeStatusesPostgres writes the changed messages in one UPDATE … FROM
// (VALUES …), each only if its status is still the one read.
func writeStatusesPostgres(tx *gorm.DB, ms []*Message, read []string) error {
	if len(ms) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString("UPDATE messages SET " + fmt.Sprintf(statusSet, "v.") + "\nFROM (VALUES ")
	args := make([]any, 0, len(ms)*11)
	for i, m := range ms {
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d::text, $%d::text, $%d::text, $%d::timestamptz, $%d::timestamptz, $%d::timestamptz, $%d::timestamptz, $%d::integer, $%d::text, $%d::text, $%d::timestamptz)",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11)
		args = append(args, m.ID, read[i], m.Status, m.SentAt, m.DeliveredAt, m.ReadAt, m.FailedAt, m.ErrorCode, m.ErrorTitle, m.ErrorDetail, m.UpdatedAt)
	}
	q.WriteString(`) AS v (id, read_status, status, sent_at, delivered_at, read_at, failed_at, error_code, error_title, error_detail, updated_at)
WHERE messages.id = v.id AND messages.status = v.read_status`)
	res, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, q.String(), args...)
	if err != nil {
		return fmt.Errorf("store: apply statuses: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: apply statuses: %w", err)
	}
	if n != int64(len(ms)) {
		return errStatusMoved
	}
	return nil
}

// writeStatusesSQLite writes the changed messages one statement each:
// in process, a statement costs no round trip, and SQLite has no
// UPDATE … FROM a VALUES list with named columns to fold them into one.
func writeStatusesSQLite(tx *gorm.DB, ms []*Message, read []string) error {
	for i, m := range ms {
		res, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, writeStatusSQLiteQuery,
			m.Status, m.SentAt, m.DeliveredAt, m.ReadAt, m.FailedAt, m.ErrorCode, m.ErrorTitle, m.ErrorDetail, m.UpdatedAt, m.ID, read[i])
		if err != nil {
			return fmt.Errorf("store: apply statuses: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: apply statuses: %w", err)
		}
		if n != 1 {
			return errStatusMoved
		}
	}
	return nil
}

// writeStatusSQLiteQuery is writeStatusesSQLite's statement.
const writeStatusSQLiteQuery = `UPDATE messages SET status = ?, sent_at = COALESCE(sent_at, ?), delivered_at = COALESCE(delivered_at, ?),
	read_at = COALESCE(read_at, ?), failed_at = COALESCE(failed_at, ?), error_code = ?, error_title = ?, error_detail = ?, updated_at = ?
WHERE id = ? AND status = ?`

// insertOrphans keeps statuses for unknown messages in one statement, in
// order (MarkSent applies them by id); one already kept for the same
// message and status is kept once, as ApplyStatus's insert does.
func insertOrphans(tx *gorm.DB, orphans []OrphanStatus) error {
	if len(orphans) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString("INSERT INTO orphan_statuses (channel_id, external_id, status, error_code, error_title, error_detail, occurred_at, created_at) VALUES ")
	args := make([]any, 0, len(orphans)*8)
	for i, o := range orphans {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, o.ChannelID, o.ExternalID, o.Status, o.ErrorCode, o.ErrorTitle, o.ErrorDetail, o.OccurredAt, o.CreatedAt)
	}
	q.WriteString(" ON CONFLICT DO NOTHING")
	sql := q.String()
	if tx.Dialector.Name() == string(Postgres) {
		sql = numbered(sql)
	}
	if _, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, sql, args...); err != nil {
		return fmt.Errorf("store: keep orphan statuses: %w", err)
	}
	return nil
}
