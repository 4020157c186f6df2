package store

import (
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
)

// InboundRow is one customer message for StoreInboundRows: the contact it comes
// from and the message row to insert. StoreInboundRows fills Contact and
// Inserted.
type InboundRow struct {
	Channel   *Channel
	Customer  channel.Customer
	InboundAt *time.Time // moves the contact's last_inbound_at; nil for none
	Message   *Message

	Contact  *Contact
	Inserted bool // false: the wamid was stored before (a redelivery)
}

// StoreInboundRows is UpsertContactWithMessage for many messages at once: one
// contact upsert for their distinct customers and one message insert, two
// statements whatever their number. Group commit hands it the plain
// messages of a group of webhook deliveries; each statement costs
// PostgreSQL a parse, a plan and an executor start, which for one-row
// statements weighed as much as the rows.
//
// Rows are written in the order given (callers order them by channel and
// customer, the order concurrent groups take the row locks in). A
// customer appearing several times is upserted once with what the
// per-message upserts would have left: the last non-empty name, phone
// and username, the latest inbound time; Contact.Created is true only on
// the customer's first row. A wamid given twice, or stored before, is
// inserted once (ON CONFLICT DO NOTHING: later rows of the same statement
// see the earlier ones).
func StoreInboundRows(tx *gorm.DB, rows []InboundRow) error {
	if len(rows) == 0 {
		return nil
	}
	if tx.Dialector.Name() != string(Postgres) {
		// SQLite runs in process: a statement costs no round trip.
		for i := range rows {
			r := &rows[i]
			r.Message.WorkspaceID, r.Message.ChannelID = r.Channel.WorkspaceID, r.Channel.ID
			ct, ok, err := UpsertContactWithMessage(tx, r.Channel, r.Customer, r.InboundAt, r.Message)
			if err != nil {
				return err
			}
			r.Contact, r.Inserted = ct, ok
		}
		return nil
	}
	if err := upsertContacts(tx, rows); err != nil {
		return err
	}
	return insertMessages(tx, rows)
}

type contactKey struct{ channelID, externalID string }

// upsertContacts upserts the rows' distinct customers in one statement
// and sets each row's Contact.
func upsertContacts(tx *gorm.DB, rows []InboundRow) error {
	type merged struct {
		ch       *Channel
		c        channel.Customer
		at       *time.Time
		proposed string
		first    int // the row that creates the contact, if any
	}
	var order []contactKey
	byKey := map[contactKey]*merged{}
	for i := range rows {
		r := &rows[i]
		k := contactKey{r.Channel.ID, r.Customer.ExternalID}
		m, ok := byKey[k]
		if !ok {
			m = &merged{ch: r.Channel, c: r.Customer, proposed: NewID(), first: i}
			byKey[k] = m
			order = append(order, k)
		} else {
			if r.Customer.Name != "" {
				m.c.Name = r.Customer.Name
			}
			if r.Customer.Phone != "" {
				m.c.Phone = r.Customer.Phone
			}
			if r.Customer.Username != "" {
				m.c.Username = r.Customer.Username
			}
		}
		if r.InboundAt != nil {
			t := r.InboundAt.UTC()
			if m.at == nil || m.at.Before(t) {
				m.at = &t
			}
		}
	}
	now := Now()
	var q strings.Builder
	q.WriteString(upsertContactsHead)
	args := make([]any, 0, len(order)*10)
	for i, k := range order {
		m := byKey[k]
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, '', $%d::timestamptz, $%d::timestamptz, $%d::timestamptz)",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10)
		args = append(args, m.proposed, m.ch.WorkspaceID, m.ch.ID, m.c.ExternalID, m.c.Name, m.c.Phone, m.c.Username, m.at, now, now)
	}
	q.WriteString(upsertContactsTail)
	res, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, q.String(), args...)
	if err != nil {
		return fmt.Errorf("store: upsert contacts: %w", err)
	}
	defer res.Close()
	contacts := make(map[contactKey]*Contact, len(order))
	for res.Next() {
		var ct Contact
		if err := res.Scan(&ct.ID, &ct.WorkspaceID, &ct.ChannelID, &ct.ExternalID, &ct.Name, &ct.Phone, &ct.Username, &ct.AvatarURL,
			&ct.LastInboundAt, &ct.CreatedAt, &ct.UpdatedAt); err != nil {
			return fmt.Errorf("store: upsert contacts: %w", err)
		}
		contacts[contactKey{ct.ChannelID, ct.ExternalID}] = &ct
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("store: upsert contacts: %w", err)
	}
	for i := range rows {
		r := &rows[i]
		k := contactKey{r.Channel.ID, r.Customer.ExternalID}
		ct, ok := contacts[k]
		if !ok {
			return fmt.Errorf("store: upsert contacts: no row returned for customer %q", k.externalID)
		}
		c := *ct
		m := byKey[k]
		c.Created = ct.ID == m.proposed && m.first == i
		r.Contact = &c
	}
	return nil
}

// upsertContactsHead and upsertContactsTail frame the VALUES of
// upsertContacts: the conflict arm is upsertContactSQL's.
var (
	upsertContactsHead = `INSERT INTO contacts
	(id, workspace_id, channel_id, external_id, name, phone, username, avatar_url, last_inbound_at, created_at, updated_at)
VALUES `
	upsertContactsTail = upsertContactSQL[strings.Index(upsertContactSQL, "\nON CONFLICT"):]
)

// insertMessages inserts the rows' messages in one statement and sets
// each row's Inserted.
func insertMessages(tx *gorm.DB, rows []InboundRow) error {
	now := Now()
	var q strings.Builder
	q.WriteString(insertMessageColumns)
	args := make([]any, 0, len(rows)*26)
	for i := range rows {
		r := &rows[i]
		m := r.Message
		if m.ID == "" {
			m.ID = NewID()
		}
		m.WorkspaceID, m.ChannelID, m.ContactID, m.CreatedAt, m.UpdatedAt = r.Channel.WorkspaceID, r.Channel.ID, r.Contact.ID, now, now
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		n := len(args)
		for j := range 26 {
			if j > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d%s", n+j+1, messageColumnCasts[j])
		}
		q.WriteByte(')')
		args = append(args, m.ID, m.WorkspaceID, m.ChannelID, m.ContactID, m.Direction, m.Type, m.Text, m.MediaID, m.Extra, m.Template,
			m.ExternalID, m.QuotedMessageID, m.QuotedExternalID, m.HumanAgent, m.Status, m.ErrorCode, m.ErrorTitle, m.ErrorDetail,
			m.ProviderAt, m.SentAt, m.DeliveredAt, m.ReadAt, m.FailedAt, m.HeldUntil, m.CreatedAt, m.UpdatedAt)
	}
	q.WriteString(" ON CONFLICT DO NOTHING RETURNING id")
	res, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, q.String(), args...)
	if err != nil {
		return fmt.Errorf("store: insert messages: %w", err)
	}
	defer res.Close()
	inserted := make(map[string]bool, len(rows))
	for res.Next() {
		var id string
		if err := res.Scan(&id); err != nil {
			return fmt.Errorf("store: insert messages: %w", err)
		}
		inserted[id] = true
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("store: insert messages: %w", err)
	}
	for i := range rows {
		rows[i].Inserted = inserted[rows[i].Message.ID]
	}
	return nil
}

// messageColumnCasts type the message insert's parameters, in
// insertMessageColumns' order: PostgreSQL resolves a multi-row VALUES
// list's column types as it does a UNION's, so an untyped parameter would
// be taken as text and could not be assigned to a timestamp, integer or
// boolean column.
var messageColumnCasts = [26]string{
	"::text", "::text", "::text", "::text", "::text", "::text", "::text", "::text", "::text", "::text",
	"::text", "::text", "::text", "::boolean", "::text", "::integer", "::text", "::text",
	"::timestamptz", "::timestamptz", "::timestamptz", "::timestamptz", "::timestamptz", "::timestamptz", "::timestamptz", "::timestamptz",
}
