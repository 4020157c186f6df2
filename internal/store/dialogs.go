package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Dialog is one customer of a channel as one CRM integration sees the
// conversation: who owns it there, which CRM record it is, how many of
// the customer's messages wait unread and whether the customer waits for
// an answer. A channel bound to two CRMs has two dialogs per customer.
type Dialog struct {
	ID            string `gorm:"primaryKey"`
	WorkspaceID   string
	IntegrationID string
	ChannelID     string
	ContactID     string
	// OwnerUserID is the CRM's user id of the owner; "" is unassigned.
	OwnerUserID string
	// CRMEntity and CRMEntityID name the CRM record the conversation is
	// kept in (e.g. "deal", "123"); "" until the connector links one.
	CRMEntity   string `gorm:"column:crm_entity"`
	CRMEntityID string `gorm:"column:crm_entity_id"`
	// UnreadCount counts the customer's messages since the last answer.
	UnreadCount    int
	LastInboundAt  *time.Time
	LastOutboundAt *time.Time
	// LastMessageAt is the later of the two: the order of the list.
	LastMessageAt time.Time
	Waiting       bool
	// WaitingSince is when the first unanswered customer message came;
	// nil unless Waiting.
	WaitingSince    *time.Time
	NoReplyNeededAt *time.Time
	// DialogNotices are the unanswered-customer notices' marks.
	DialogNotices
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DialogKey names a dialog the way the code that meets one knows it: by
// the integration, channel and customer. WorkspaceID is what a new dialog
// is created in (the channel's).
type DialogKey struct {
	WorkspaceID   string
	IntegrationID string
	ChannelID     string
	ContactID     string
}

// dialogInsert is the column list every upsert starts a new dialog with.
const dialogInsert = `INSERT INTO dialogs (id, workspace_id, integration_id, channel_id, contact_id,
	unread_count, last_inbound_at, last_outbound_at, last_message_at, waiting, waiting_since, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (integration_id, channel_id, contact_id) DO UPDATE SET `

// later keeps the later of the stored time and the new one: on PostgreSQL
// two transactions may commit in the other order than they read the
// clock. (GREATEST and max() differ on NULL between the engines; CASE
// does not.)
func later(col string) string {
	return col + ` = CASE WHEN dialogs.` + col + ` IS NULL OR dialogs.` + col + ` < excluded.` + col +
		` THEN excluded.` + col + ` ELSE dialogs.` + col + ` END`
}

// The statements of DialogInbound and DialogOutbound, built once: both run
// in every ingest transaction of a bound channel.
var (
	dialogInboundSQL = dialogInsert + `unread_count = dialogs.unread_count + 1, ` +
		later("last_inbound_at") + `, ` + later("last_message_at") + `,
		waiting_since = CASE WHEN dialogs.waiting THEN dialogs.waiting_since ELSE excluded.waiting_since END,
		waiting = (dialogs.waiting OR excluded.waiting), updated_at = excluded.updated_at`
	dialogInboundPostgres = numbered(dialogInboundSQL)
	dialogOutboundSQL     = dialogInsert + `unread_count = 0, ` +
		later("last_outbound_at") + `, ` + later("last_message_at") + `,
		waiting = false, waiting_since = NULL, updated_at = excluded.updated_at`
	dialogOutboundPostgres = numbered(dialogOutboundSQL)
)

// DialogInbound records a customer's message at time at in the dialog of
// k, creating the dialog on the first one: one more unread, the last
// inbound time moves forward and, when the message asks for an answer,
// the dialog waits. A dialog already waiting keeps its waiting_since, so
// timers count from the first unanswered message. Reactions and the like
// (wantsAnswer false) are counted but do not make the customer wait.
// One statement, so it costs the ingest path one round trip per binding.
func DialogInbound(tx *gorm.DB, k DialogKey, at time.Time, wantsAnswer bool) error {
	at = at.UTC()
	now := Now()
	var since *time.Time
	if wantsAnswer {
		since = &at
	}
	_, err := execRaw(tx, dialogInboundSQL, dialogInboundPostgres, NewID(), k.WorkspaceID, k.IntegrationID, k.ChannelID, k.ContactID,
		1, at, nil, at, wantsAnswer, since, now, now)
	if err != nil {
		return fmt.Errorf("store: dialog inbound: %w", err)
	}
	return nil
}

// DialogOutbound records an answer (any message to the customer: an
// operator's, a robot's, one sent from the messenger's own app) at time
// at: nothing is unread any more and nobody waits. A business that writes
// first starts the dialog.
func DialogOutbound(tx *gorm.DB, k DialogKey, at time.Time) error {
	at = at.UTC()
	now := Now()
	_, err := execRaw(tx, dialogOutboundSQL, dialogOutboundPostgres, NewID(), k.WorkspaceID, k.IntegrationID, k.ChannelID, k.ContactID,
		0, nil, at, at, false, nil, now, now)
	if err != nil {
		return fmt.Errorf("store: dialog outbound: %w", err)
	}
	return nil
}

// DialogCRM is what a CRM connector learned about a dialog: the record it
// keeps the conversation in and, when it knows one, its owner there.
type DialogCRM struct {
	Entity   string // e.g. "lead", "deal"
	EntityID string
	// OwnerUserID "" leaves the owner as it is.
	OwnerUserID string
}

// SetDialogCRM records the CRM record (and owner) of the dialog of k, in
// the transaction that links the record. A connector calls it when it
// creates or finds the record. The dialog is created if it does not exist
// yet (a conversation from before dialogs were kept).
func SetDialogCRM(tx *gorm.DB, k DialogKey, rec DialogCRM) error {
	if rec.Entity == "" || rec.EntityID == "" {
		return fmt.Errorf("store: dialog crm record needs an entity and its id (got %q %q)", rec.Entity, rec.EntityID)
	}
	now := Now()
	set := `crm_entity = excluded.crm_entity, crm_entity_id = excluded.crm_entity_id, updated_at = excluded.updated_at`
	if rec.OwnerUserID != "" {
		set += `, owner_user_id = excluded.owner_user_id`
	}
	err := tx.Exec(`INSERT INTO dialogs (id, workspace_id, integration_id, channel_id, contact_id,
	owner_user_id, crm_entity, crm_entity_id, last_message_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (integration_id, channel_id, contact_id) DO UPDATE SET `+set,
		NewID(), k.WorkspaceID, k.IntegrationID, k.ChannelID, k.ContactID,
		rec.OwnerUserID, rec.Entity, rec.EntityID, now, now, now).Error
	if err != nil {
		return fmt.Errorf("store: dialog crm record: %w", err)
	}
	return nil
}

// SetDialogOwner gives the dialog of k to a CRM user ("" unassigns it).
// With onlyUnassigned the dialog changes only if nobody owns it yet, so
// two first responders racing leave exactly one owner; the result says
// whether this call set it.
func SetDialogOwner(tx *gorm.DB, k DialogKey, owner string, onlyUnassigned bool) (bool, error) {
	q := tx.Model(&Dialog{}).Where("integration_id = ? AND channel_id = ? AND contact_id = ?", k.IntegrationID, k.ChannelID, k.ContactID)
	if onlyUnassigned {
		q = q.Where("owner_user_id = ''")
	}
	res := q.Updates(map[string]any{"owner_user_id": owner, "updated_at": Now()})
	if res.Error != nil {
		return false, fmt.Errorf("store: dialog owner: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// DialogView is a dialog with its customer.
type DialogView struct {
	Dialog
	Contact *Contact
}

// GetDialog returns one dialog in scope.
func (s *Store) GetDialog(ctx context.Context, scope Scope, id string) (*DialogView, error) {
	var d Dialog
	if err := scope.apply(s.g(ctx)).Where("id = ?", id).First(&d).Error; err != nil {
		return nil, notFound(err)
	}
	vs, err := s.dialogViews(ctx, []Dialog{d})
	if err != nil {
		return nil, err
	}
	return &vs[0], nil
}

// FindDialog returns the dialog of k, for code that meets a conversation
// from its CRM side.
func (s *Store) FindDialog(ctx context.Context, k DialogKey) (*DialogView, error) {
	var d Dialog
	err := s.g(ctx).Where("integration_id = ? AND channel_id = ? AND contact_id = ?", k.IntegrationID, k.ChannelID, k.ContactID).First(&d).Error
	if err != nil {
		return nil, notFound(err)
	}
	vs, err := s.dialogViews(ctx, []Dialog{d})
	if err != nil {
		return nil, err
	}
	return &vs[0], nil
}

// DialogNoReplyNeeded stops a dialog waiting without an answer (an
// operator decided none is needed) and returns it. A dialog that was not
// waiting is returned as it is, its no_reply_needed_at unchanged.
func (s *Store) DialogNoReplyNeeded(ctx context.Context, scope Scope, id string) (*DialogView, error) {
	return s.DialogNoReplyNeededThen(ctx, scope, id, nil)
}

// DialogNoReplyNeededThen is DialogNoReplyNeeded calling then, when the
// dialog stopped waiting, in the same transaction with the dialog as it
// was (still waiting): routing queues what the CRMs must hear of it.
func (s *Store) DialogNoReplyNeededThen(ctx context.Context, scope Scope, id string, then func(tx *gorm.DB, was *Dialog) error) (*DialogView, error) {
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		var was Dialog
		err := scope.apply(tx).Where("id = ? AND waiting", id).First(&was).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil // not waiting (or not in scope: GetDialog says so)
		}
		if err != nil {
			return err
		}
		now := Now()
		res := tx.Model(&Dialog{}).Where("id = ? AND waiting", id).
			Updates(map[string]any{"waiting": false, "waiting_since": nil, "no_reply_needed_at": now, "updated_at": now})
		if res.Error != nil || res.RowsAffected == 0 || then == nil {
			return res.Error
		}
		return then(tx, &was)
	})
	if err != nil {
		return nil, fmt.Errorf("store: dialog no reply needed: %w", err)
	}
	return s.GetDialog(ctx, scope, id)
}

// DialogFilter narrows ListDialogs; zero fields do not filter.
type DialogFilter struct {
	IntegrationID string
	ChannelID     string
	// Owner filters by owner; a pointer to "" lists the unassigned.
	Owner   *string
	Waiting *bool
}

// DialogCursor is where a page of ListDialogs ends: the last dialog's
// activity time and id.
type DialogCursor struct {
	At time.Time
	ID string
}

// ErrBadCursor is a cursor that no page of ListDialogs produced.
var ErrBadCursor = errors.New("store: malformed cursor")

// String is the cursor as the API shows it: microseconds since the epoch
// and the id. Times are kept to the microsecond (Now), so it is exact.
func (c DialogCursor) String() string {
	return strconv.FormatInt(c.At.UnixMicro(), 10) + "_" + c.ID
}

// ParseDialogCursor reads a DialogCursor.String value.
func ParseDialogCursor(s string) (DialogCursor, error) {
	us, id, ok := strings.Cut(s, "_")
	if !ok || !ValidID(id) || us == "" || len(us) > 18 {
		return DialogCursor{}, ErrBadCursor
	}
	for i := 0; i < len(us); i++ {
		if us[i] < '0' || us[i] > '9' {
			return DialogCursor{}, ErrBadCursor
		}
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return DialogCursor{}, ErrBadCursor
	}
	return DialogCursor{At: time.UnixMicro(n).UTC(), ID: id}, nil
}

// ListDialogs lists dialogs in scope, the most recent activity first,
// after the cursor (nil: from the start). It returns the next page's
// cursor, or nil on the last page. A dialog that moves (a new message)
// while someone pages may show twice or not at all: pages follow activity.
func (s *Store) ListDialogs(ctx context.Context, scope Scope, f DialogFilter, after *DialogCursor, limit int) ([]DialogView, *DialogCursor, error) {
	q := scope.apply(s.g(ctx))
	if f.IntegrationID != "" {
		q = q.Where("integration_id = ?", f.IntegrationID)
	}
	if f.ChannelID != "" {
		q = q.Where("channel_id = ?", f.ChannelID)
	}
	if f.Owner != nil {
		q = q.Where("owner_user_id = ?", *f.Owner)
	}
	if f.Waiting != nil {
		q = q.Where("waiting = ?", *f.Waiting)
	}
	if after != nil {
		q = q.Where("(last_message_at < ? OR (last_message_at = ? AND id < ?))", after.At, after.At, after.ID)
	}
	var ds []Dialog
	if err := q.Order("last_message_at DESC, id DESC").Limit(limit + 1).Find(&ds).Error; err != nil {
		return nil, nil, fmt.Errorf("store: list dialogs: %w", err)
	}
	var next *DialogCursor
	if len(ds) > limit {
		ds = ds[:limit]
		last := ds[limit-1]
		next = &DialogCursor{At: last.LastMessageAt, ID: last.ID}
	}
	vs, err := s.dialogViews(ctx, ds)
	return vs, next, err
}

// dialogViews adds each dialog's customer, in one query.
func (s *Store) dialogViews(ctx context.Context, ds []Dialog) ([]DialogView, error) {
	ids := map[string]bool{}
	for _, d := range ds {
		ids[d.ContactID] = true
	}
	contacts := map[string]*Contact{}
	if len(ids) > 0 {
		var cs []Contact
		if err := s.g(ctx).Where("id IN ?", keys(ids)).Find(&cs).Error; err != nil {
			return nil, fmt.Errorf("store: dialog contacts: %w", err)
		}
		for i := range cs {
			contacts[cs[i].ID] = &cs[i]
		}
	}
	out := make([]DialogView, len(ds))
	for i, d := range ds {
		out[i] = DialogView{Dialog: d, Contact: contacts[d.ContactID]}
	}
	return out, nil
}
