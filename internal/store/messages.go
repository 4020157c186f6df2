package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard/switchboard/internal/channel"
)

// UpsertContact finds or creates the customer of a channel, refreshing the
// name and phone it was given, and moves last_inbound_at forward when
// inboundAt is set (a message from the customer opens the service window).
//
// It is one statement (INSERT … ON CONFLICT DO UPDATE … RETURNING) on both
// engines: every inbound message pays it, and the find-then-insert-then-
// update it replaces cost up to three round trips. The conflict arm takes
// the row lock, so concurrent deliveries from one customer serialise on it
// and the window never moves back. The contact was created by this call
// when the id returned is the one it proposed.
func UpsertContact(tx *gorm.DB, ch *Channel, c channel.Customer, inboundAt *time.Time) (*Contact, error) {
	ct, _, err := upsertContact(tx, ch, c, inboundAt, nil)
	return ct, err
}

// UpsertContactWithMessage is UpsertContact followed by InsertMessage of m
// for the contact (m.ContactID is set): what storing a customer's message
// does. On PostgreSQL it is one statement (the message insert reads the
// contact's id from the upsert's RETURNING in a data-modifying WITH), a
// round trip less for every message stored; SQLite, in process, runs the
// two. It reports the contact and whether m was inserted (false: a
// redelivery).
func UpsertContactWithMessage(tx *gorm.DB, ch *Channel, c channel.Customer, inboundAt *time.Time, m *Message) (*Contact, bool, error) {
	if tx.Dialector.Name() != string(Postgres) {
		ct, err := UpsertContact(tx, ch, c, inboundAt)
		if err != nil {
			return nil, false, err
		}
		m.ContactID = ct.ID
		ok, err := InsertMessage(tx, m)
		return ct, ok, err
	}
	return upsertContact(tx, ch, c, inboundAt, m)
}

// upsertContact runs the contact upsert, with m's insert when m is not
// nil (PostgreSQL only). Hand-written and scanned by hand, on tx's
// connection: gorm's Scan renders every statement with its arguments for
// a trace recorder (a regexp pass), and its ScanRows reflects over the
// row; together they cost more CPU than the statement.
func upsertContact(tx *gorm.DB, ch *Channel, c channel.Customer, inboundAt *time.Time, m *Message) (*Contact, bool, error) {
	now := Now()
	var at *time.Time
	if inboundAt != nil {
		t := inboundAt.UTC()
		at = &t
	}
	id := NewID()
	args := []any{id, ch.WorkspaceID, ch.ID, c.ExternalID, c.Name, c.Phone, c.Username, at, now, now}
	q := upsertContactSQL
	switch {
	case m != nil:
		if m.ID == "" {
			m.ID = NewID()
		}
		m.WorkspaceID, m.ChannelID, m.CreatedAt, m.UpdatedAt = ch.WorkspaceID, ch.ID, now, now
		args = append(args, m.ID, m.Direction, m.Type, m.Text, m.MediaID, m.Extra, m.Template,
			m.ExternalID, m.QuotedMessageID, m.QuotedExternalID, m.HumanAgent, m.Status, m.ErrorCode, m.ErrorTitle, m.ErrorDetail,
			m.ProviderAt, m.SentAt, m.DeliveredAt, m.ReadAt, m.FailedAt, m.HeldUntil, m.CreatedAt, m.UpdatedAt)
		q = upsertContactWithMessagePostgres
	case tx.Dialector.Name() == string(Postgres):
		q = upsertContactPostgres
	}
	var ct Contact
	var inserted bool
	dest := []any{&ct.ID, &ct.WorkspaceID, &ct.ChannelID, &ct.ExternalID, &ct.Name, &ct.Phone, &ct.Username, &ct.AvatarURL,
		&ct.LastInboundAt, &ct.CreatedAt, &ct.UpdatedAt}
	if m != nil {
		dest = append(dest, &inserted)
	}
	err := tx.Statement.ConnPool.QueryRowContext(tx.Statement.Context, q, args...).Scan(dest...)
	if err != nil {
		return nil, false, fmt.Errorf("store: upsert contact: %w", err)
	}
	ct.Created = ct.ID == id
	if m != nil {
		m.ContactID = ct.ID
	}
	return &ct, inserted, nil
}

// upsertContactSQL refreshes only what the delivery brings (an empty name
// keeps the known one) and touches updated_at only when something changed.
const upsertContactSQL = `INSERT INTO contacts
	(id, workspace_id, channel_id, external_id, name, phone, username, avatar_url, last_inbound_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)
ON CONFLICT (channel_id, external_id) DO UPDATE SET
	name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE contacts.name END,
	phone = CASE WHEN excluded.phone <> '' THEN excluded.phone ELSE contacts.phone END,
	username = CASE WHEN excluded.username <> '' THEN excluded.username ELSE contacts.username END,
	last_inbound_at = CASE WHEN excluded.last_inbound_at IS NOT NULL
			AND (contacts.last_inbound_at IS NULL OR contacts.last_inbound_at < excluded.last_inbound_at)
		THEN excluded.last_inbound_at ELSE contacts.last_inbound_at END,
	updated_at = CASE WHEN (excluded.name <> '' AND excluded.name <> contacts.name)
			OR (excluded.phone <> '' AND excluded.phone <> contacts.phone)
			OR (excluded.username <> '' AND excluded.username <> contacts.username)
			OR (excluded.last_inbound_at IS NOT NULL
				AND (contacts.last_inbound_at IS NULL OR contacts.last_inbound_at < excluded.last_inbound_at))
		THEN excluded.updated_at ELSE contacts.updated_at END
RETURNING id, workspace_id, channel_id, external_id, name, phone, username, avatar_url, last_inbound_at, created_at, updated_at`

// upsertContactPostgres is upsertContactSQL with PostgreSQL's numbered
// placeholders; upsertContactWithMessagePostgres adds the message insert
// ($11 on, messageColumns' order after contact_id's three) and answers
// whether it inserted as a twelfth column.
var (
	upsertContactPostgres            = numbered(upsertContactSQL)
	upsertContactWithMessagePostgres = `WITH c AS (` + upsertContactPostgres + `),
m AS (INSERT INTO messages (id, workspace_id, channel_id, contact_id, direction, type, text, media_id, extra, template,
	external_id, quoted_message_id, quoted_external_id, human_agent, status, error_code, error_title, error_detail,
	provider_at, sent_at, delivered_at, read_at, failed_at, held_until, created_at, updated_at)
	SELECT $11::text, c.workspace_id, c.channel_id, c.id, $12::text, $13::text, $14::text, $15::text, $16::text, $17::text,
		$18::text, $19::text, $20::text, $21::boolean, $22::text, $23::integer, $24::text, $25::text,
		$26::timestamptz, $27::timestamptz, $28::timestamptz, $29::timestamptz, $30::timestamptz, $31::timestamptz, $32::timestamptz, $33::timestamptz
	FROM c ON CONFLICT DO NOTHING RETURNING 1)
SELECT c.*, EXISTS (SELECT 1 FROM m) FROM c`
)

// execRaw runs a hand-written statement on tx's connection, bypassing
// gorm's statement building and callbacks: sqlite is the statement with ?
// placeholders, postgres the same with $n ones (numbered).
func execRaw(tx *gorm.DB, sqlite, postgres string, args ...any) (sql.Result, error) {
	q := sqlite
	if tx.Dialector.Name() == string(Postgres) {
		q = postgres
	}
	return tx.Statement.ConnPool.ExecContext(tx.Statement.Context, q, args...)
}

// numbered turns a statement's ? placeholders into $1, $2, …; the
// statements it is given have no other question marks.
func numbered(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// InsertMessage stores m unless a message with the same channel and
// external id exists (Meta redelivers); it reports whether it inserted.
//
// Every stored message pays it, so it is one hand-written statement run
// on tx's connection, not gorm's Create: building the INSERT by
// reflection over Message cost more CPU than sending it. A column added
// to Message must be added here too (TestInsertMessageWritesEveryField
// reads every field back).
func InsertMessage(tx *gorm.DB, m *Message) (bool, error) {
	now := Now()
	if m.ID == "" {
		m.ID = NewID()
	}
	m.CreatedAt, m.UpdatedAt = now, now
	res, err := execRaw(tx, insertMessageSQLite, insertMessagePostgres,
		m.ID, m.WorkspaceID, m.ChannelID, m.ContactID, m.Direction, m.Type, m.Text, m.MediaID, m.Extra, m.Template,
		m.ExternalID, m.QuotedMessageID, m.QuotedExternalID, m.HumanAgent, m.Status, m.ErrorCode, m.ErrorTitle, m.ErrorDetail,
		m.ProviderAt, m.SentAt, m.DeliveredAt, m.ReadAt, m.FailedAt, m.HeldUntil, m.CreatedAt, m.UpdatedAt)
	if err != nil {
		return false, fmt.Errorf("store: insert message: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: insert message: %w", err)
	}
	return n == 1, nil
}

const insertMessageColumns = `INSERT INTO messages (id, workspace_id, channel_id, contact_id, direction, type, text, media_id, extra, template,
	external_id, quoted_message_id, quoted_external_id, human_agent, status, error_code, error_title, error_detail,
	provider_at, sent_at, delivered_at, read_at, failed_at, held_until, created_at, updated_at) VALUES `

// insertMessage* differ in placeholders only; the conflict (a wamid seen
// before, on the partial unique index) inserts nothing.
const (
	insertMessagePostgres = insertMessageColumns + `($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
	$19, $20, $21, $22, $23, $24, $25, $26) ON CONFLICT DO NOTHING`
	insertMessageSQLite = insertMessageColumns + `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
)

// FindByExternalID finds a message of a channel by its wamid / mid.
func FindByExternalID(tx *gorm.DB, channelID, externalID string) (*Message, error) {
	var m Message
	if err := tx.Where("channel_id = ? AND external_id = ?", channelID, externalID).First(&m).Error; err != nil {
		return nil, notFound(err)
	}
	return &m, nil
}

// predecessors lists the statuses from which next is a step forward, so
// the UPDATE itself enforces the order even when two deliveries race.
func predecessors(next channel.Status) []string {
	var out []string
	for _, cur := range []channel.Status{channel.StatusQueued, channel.StatusSent, channel.StatusDelivered, channel.StatusRead, channel.StatusFailed, channel.StatusReceived} {
		if channel.Advances(cur, next) {
			out = append(out, string(cur))
		}
	}
	return out
}

// StatusResult says what ApplyStatus did.
type StatusResult int

const (
	StatusApplied StatusResult = iota // the message moved forward
	StatusStale                       // known message, nothing newer learned
	StatusOrphan                      // message not known yet; kept for later
)

// ApplyStatus records a status webhook against the outbound message it is
// about. A status for a wamid we do not know yet is kept as an orphan:
// Meta may send it before our send call returns.
func ApplyStatus(tx *gorm.DB, channelID string, u channel.StatusUpdate) (StatusResult, *Message, error) {
	if err := lockExternalID(tx, channelID, u.ExternalID); err != nil {
		return 0, nil, err
	}
	m, err := FindByExternalID(tx, channelID, u.ExternalID)
	if errors.Is(err, ErrNotFound) {
		o := OrphanStatus{ChannelID: channelID, ExternalID: u.ExternalID, Status: string(u.Status), OccurredAt: u.Timestamp, CreatedAt: Now()}
		if u.Error != nil {
			o.ErrorCode, o.ErrorTitle, o.ErrorDetail = u.Error.Code, u.Error.Title, errDetail(u.Error)
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&o).Error; err != nil {
			return 0, nil, fmt.Errorf("store: keep orphan status: %w", err)
		}
		return StatusOrphan, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	res, err := advance(tx, m, u)
	return res, m, err
}

func errDetail(e *channel.ProviderError) string {
	if e.Details != "" {
		return e.Details
	}
	return e.Message
}

func advance(tx *gorm.DB, m *Message, u channel.StatusUpdate) (StatusResult, error) {
	ts := u.Timestamp
	if ts.IsZero() {
		ts = Now()
	}
	// Timestamps are facts even when the status itself is stale (a late
	// "delivered" after "read" still tells when it was delivered).
	var col string
	switch u.Status {
	case channel.StatusSent:
		col = "sent_at"
	case channel.StatusDelivered:
		col = "delivered_at"
	case channel.StatusRead:
		col = "read_at"
	case channel.StatusFailed:
		col = "failed_at"
	}
	if col != "" {
		if err := tx.Model(&Message{}).Where("id = ? AND "+col+" IS NULL", m.ID).
			Update(col, ts).Error; err != nil {
			return 0, fmt.Errorf("store: status time: %w", err)
		}
	}
	prev := predecessors(u.Status)
	if len(prev) == 0 {
		return StatusStale, nil
	}
	set := map[string]any{"status": string(u.Status), "updated_at": Now()}
	if u.Status == channel.StatusFailed && u.Error != nil {
		set["error_code"], set["error_title"], set["error_detail"] = u.Error.Code, u.Error.Title, errDetail(u.Error)
	}
	res := tx.Model(&Message{}).Where("id = ? AND status IN ?", m.ID, prev).Updates(set)
	if res.Error != nil {
		return 0, fmt.Errorf("store: advance status: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return StatusStale, nil
	}
	m.Status = string(u.Status)
	return StatusApplied, nil
}

// lockExternalID makes the transactions that record a message's external
// id and those that apply a status to it take turns. Otherwise, on
// PostgreSQL, a status stored while MarkSent runs finds no message (its id
// is not committed yet) and is kept for later, while MarkSent has already
// read the kept statuses: each misses the other and the status is lost.
// Taken first, the lock makes the later one see what the earlier one
// committed. SQLite runs one writer at a time already.
func lockExternalID(tx *gorm.DB, channelID, externalID string) error {
	if tx.Dialector.Name() != "postgres" {
		return nil
	}
	if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", channelID+":"+externalID).Error; err != nil {
		return fmt.Errorf("store: lock %s: %w", externalID, err)
	}
	return nil
}

// MarkSent stores the external id of a message the messenger accepted and
// applies any statuses that arrived before it.
func MarkSent(tx *gorm.DB, m *Message, externalID string) error {
	if err := lockExternalID(tx, m.ChannelID, externalID); err != nil {
		return err
	}
	now := Now()
	// Instagram echoes our own send; if the echo was stored before this
	// call returned, it is a copy of m: fold it into m, with whatever the
	// customer did to the copy meanwhile (a read lands on the copy when it
	// comes before this transaction).
	var echoes []Message
	echoOf := tx.Where("channel_id = ? AND external_id = ? AND direction = ? AND id <> ?", m.ChannelID, externalID, Outbound, m.ID)
	if err := echoOf.Find(&echoes).Error; err != nil {
		return fmt.Errorf("store: find echo: %w", err)
	}
	if len(echoes) > 0 {
		if err := tx.Where("id IN ?", messageIDs(echoes)).Delete(&Message{}).Error; err != nil {
			return fmt.Errorf("store: fold echo: %w", err)
		}
	}
	err := tx.Model(&Message{}).Where("id = ?", m.ID).Updates(map[string]any{
		"external_id": externalID, "updated_at": now,
	}).Error
	if err != nil {
		return fmt.Errorf("store: mark sent: %w", err)
	}
	m.ExternalID = &externalID
	if _, err := advance(tx, m, channel.StatusUpdate{ExternalID: externalID, Status: channel.StatusSent, Timestamp: now}); err != nil {
		return err
	}
	for _, e := range echoes {
		for _, st := range []struct {
			status channel.Status
			at     *time.Time
		}{{channel.StatusDelivered, e.DeliveredAt}, {channel.StatusRead, e.ReadAt}} {
			if st.at == nil {
				continue
			}
			if _, err := advance(tx, m, channel.StatusUpdate{ExternalID: externalID, Status: st.status, Timestamp: *st.at}); err != nil {
				return err
			}
		}
	}
	var orphans []OrphanStatus
	if err := tx.Where("channel_id = ? AND external_id = ?", m.ChannelID, externalID).Order("id").Find(&orphans).Error; err != nil {
		return fmt.Errorf("store: orphan statuses: %w", err)
	}
	for _, o := range orphans {
		u := channel.StatusUpdate{ExternalID: externalID, Status: channel.Status(o.Status), Timestamp: o.OccurredAt}
		if o.ErrorCode != 0 || o.ErrorTitle != "" {
			u.Error = &channel.ProviderError{Code: o.ErrorCode, Title: o.ErrorTitle, Details: o.ErrorDetail}
		}
		if _, err := advance(tx, m, u); err != nil {
			return err
		}
	}
	if len(orphans) > 0 {
		if err := tx.Where("channel_id = ? AND external_id = ?", m.ChannelID, externalID).Delete(&OrphanStatus{}).Error; err != nil {
			return fmt.Errorf("store: clear orphan statuses: %w", err)
		}
	}
	return nil
}

func messageIDs(ms []Message) []string {
	ids := make([]string, len(ms))
	for i := range ms {
		ids[i] = ms[i].ID
	}
	return ids
}

// MarkFailed fails a message that never reached the messenger or was
// refused by it.
func MarkFailed(tx *gorm.DB, m *Message, e channel.ProviderError) error {
	_, err := advance(tx, m, channel.StatusUpdate{Status: channel.StatusFailed, Timestamp: Now(), Error: &e})
	return err
}

// MessageView is a message with what a reader needs beside it.
type MessageView struct {
	Message
	Contact *Contact
	Media   *Media
	// Quoted is the text of the message this one replies to, if known.
	Quoted string
	// Author is who wrote an outbound message, when recorded; only the
	// lists the chat views read fill it in.
	Author *MessageAuthor
}

// ListMessages lists a channel's messages newest first. before is the id
// cursor (exclusive); it returns the cursor of the next page or "".
func (s *Store) ListMessages(ctx context.Context, scope Scope, channelID, before string, limit int) ([]MessageView, string, error) {
	if _, err := s.GetChannel(ctx, scope, channelID); err != nil {
		return nil, "", err
	}
	q := s.g(ctx).Where("channel_id = ?", channelID)
	if before != "" {
		q = q.Where("id < ?", before)
	}
	var ms []Message
	if err := q.Order("id DESC").Limit(limit + 1).Find(&ms).Error; err != nil {
		return nil, "", fmt.Errorf("store: list messages: %w", err)
	}
	next := ""
	if len(ms) > limit {
		ms = ms[:limit]
		next = ms[limit-1].ID
	}
	views, err := s.views(ctx, ms)
	return views, next, err
}

// GetMessage returns one message in scope.
func (s *Store) GetMessage(ctx context.Context, scope Scope, id string) (*MessageView, error) {
	var m Message
	if err := scope.apply(s.g(ctx)).Where("id = ?", id).First(&m).Error; err != nil {
		return nil, notFound(err)
	}
	v, err := s.views(ctx, []Message{m})
	if err != nil {
		return nil, err
	}
	return &v[0], nil
}

func (s *Store) views(ctx context.Context, ms []Message) ([]MessageView, error) {
	contactIDs, mediaIDs := map[string]bool{}, map[string]bool{}
	for _, m := range ms {
		contactIDs[m.ContactID] = true
		if m.MediaID != nil {
			mediaIDs[*m.MediaID] = true
		}
	}
	contacts := map[string]*Contact{}
	if len(contactIDs) > 0 {
		var cs []Contact
		if err := s.g(ctx).Where("id IN ?", keys(contactIDs)).Find(&cs).Error; err != nil {
			return nil, fmt.Errorf("store: message contacts: %w", err)
		}
		for i := range cs {
			contacts[cs[i].ID] = &cs[i]
		}
	}
	media := map[string]*Media{}
	if len(mediaIDs) > 0 {
		var md []Media
		if err := s.g(ctx).Where("id IN ?", keys(mediaIDs)).Find(&md).Error; err != nil {
			return nil, fmt.Errorf("store: message media: %w", err)
		}
		for i := range md {
			media[md[i].ID] = &md[i]
		}
	}
	quoted := map[string]string{}
	var qids []string
	for _, m := range ms {
		if m.QuotedMessageID != nil {
			qids = append(qids, *m.QuotedMessageID)
		}
	}
	if len(qids) > 0 {
		var qs []Message
		if err := s.g(ctx).Select("id", "text").Where("id IN ?", qids).Find(&qs).Error; err != nil {
			return nil, fmt.Errorf("store: quoted messages: %w", err)
		}
		for _, q := range qs {
			quoted[q.ID] = q.Text
		}
	}
	out := make([]MessageView, len(ms))
	for i, m := range ms {
		out[i] = MessageView{Message: m, Contact: contacts[m.ContactID]}
		if m.MediaID != nil {
			out[i].Media = media[*m.MediaID]
		}
		if m.QuotedMessageID != nil {
			out[i].Quoted = quoted[*m.QuotedMessageID]
		}
	}
	return out, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// GetContact returns a contact of a channel by its external id.
func (s *Store) GetContact(ctx context.Context, channelID, externalID string) (*Contact, error) {
	var c Contact
	if err := s.g(ctx).Where("channel_id = ? AND external_id = ?", channelID, externalID).First(&c).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// GetMedia returns a media row by id (unscoped: the signed URL is the
// authorisation).
func (s *Store) GetMedia(ctx context.Context, id string) (*Media, error) {
	var m Media
	if err := s.g(ctx).Where("id = ?", id).First(&m).Error; err != nil {
		return nil, notFound(err)
	}
	return &m, nil
}

// ListContactMessages lists a contact's messages, newest first.
func (s *Store) ListContactMessages(ctx context.Context, contactID string, limit int) ([]MessageView, error) {
	var ms []Message
	if err := s.g(ctx).Where("contact_id = ?", contactID).Order("id DESC").Limit(limit).Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("store: contact messages: %w", err)
	}
	vs, err := s.views(ctx, ms)
	if err != nil {
		return nil, err
	}
	return vs, s.withAuthors(ctx, vs)
}
