package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Channel routing modes: every binding gets every customer (the default,
// and what a channel without a routing row does), or each customer goes
// to exactly one binding, their branch.
const (
	RoutingAll    = "all"
	RoutingBranch = "branch"
)

// ChannelRouting is how a channel bound to several integrations shares
// its customers among them. Config is routing.BranchConfig as JSON; the
// store keeps it opaque.
type ChannelRouting struct {
	ChannelID string `gorm:"primaryKey"`
	Mode      string
	Config    string
	UpdatedAt time.Time
}

// TableName is the table's name.
func (ChannelRouting) TableName() string { return "channel_routing" }

// RoutingOf reads a channel's routing inside a transaction (the ingest
// path); a channel without a row is RoutingAll with an empty config.
func RoutingOf(tx *gorm.DB, channelID string) (*ChannelRouting, error) {
	var r ChannelRouting
	err := tx.Where("channel_id = ?", channelID).First(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return &ChannelRouting{ChannelID: channelID, Mode: RoutingAll, Config: "{}"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: routing of channel %s: %w", channelID, err)
	}
	return &r, nil
}

// ChannelRoutingOf is RoutingOf outside a transaction.
func (s *Store) ChannelRoutingOf(ctx context.Context, channelID string) (*ChannelRouting, error) {
	return RoutingOf(s.g(ctx), channelID)
}

// PutChannelRouting stores a channel's routing, replacing the old one.
func (s *Store) PutChannelRouting(ctx context.Context, r *ChannelRouting) error {
	return s.PutRoutingTx(s.g(ctx), r)
}

// PutRoutingTx is PutChannelRouting inside a transaction (one of
// Store.Tx, which forgets the cached feeds again after the commit), for a
// caller that releases held customers in the same one.
func (s *Store) PutRoutingTx(tx *gorm.DB, r *ChannelRouting) error {
	r.UpdatedAt = Now()
	err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "channel_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"mode", "config", "updated_at"})}).Create(r).Error
	// After the write, and (in a transaction) again after the commit.
	s.feeds.invalidate()
	if err != nil {
		return fmt.Errorf("store: put routing of channel %s: %w", r.ChannelID, err)
	}
	return nil
}

// BoundIntegrationIDs lists the integrations a channel is bound to, live
// or not: the branches a channel's routing may name.
func (s *Store) BoundIntegrationIDs(ctx context.Context, channelID string) ([]string, error) {
	var ids []string
	err := s.g(ctx).Model(&ChannelBinding{}).Where("channel_id = ?", channelID).Order("integration_id").Pluck("integration_id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("store: integrations of channel %s: %w", channelID, err)
	}
	return ids, nil
}

// Branch assignment sources: which rule put a customer in a branch.
const (
	BranchByNumber   = "number"
	BranchByKeyword  = "keyword"
	BranchByMenu     = "menu"
	BranchByDefault  = "default"
	BranchByMove     = "moved"
	BranchByOutbound = "outbound"
	// BranchByPrevious: the customer had a dialog with exactly one of the
	// branches before the channel was put in branch mode.
	BranchByPrevious = "previous"
)

// CustomerBranch is the branch (integration) a customer of a branch-mode
// channel belongs to. Since is the earliest message time the branch takes
// (see AssignBranch and MoveBranch).
type CustomerBranch struct {
	ChannelID     string `gorm:"primaryKey"`
	ContactID     string `gorm:"primaryKey"`
	IntegrationID string
	Source        string
	Since         time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TableName is the table's name.
func (CustomerBranch) TableName() string { return "customer_branches" }

// BranchOf returns the customer's branch on a channel, or ErrNotFound.
func BranchOf(tx *gorm.DB, channelID, contactID string) (*CustomerBranch, error) {
	var cb CustomerBranch
	if err := tx.Where("channel_id = ? AND contact_id = ?", channelID, contactID).First(&cb).Error; err != nil {
		return nil, notFound(err)
	}
	return &cb, nil
}

// CustomerBranchOf is BranchOf outside a transaction.
func (s *Store) CustomerBranchOf(ctx context.Context, channelID, contactID string) (*CustomerBranch, error) {
	return BranchOf(s.g(ctx), channelID, contactID)
}

// AssignBranch puts a customer in a branch unless they already have one,
// and returns the branch they have now and whether this call assigned it:
// with two messages racing, the first assignment wins and both see it.
// The branch takes the customer's messages since since (their first one:
// what they wrote while choosing goes with them). The customer's menu
// prompt is done with, and their dialogs of this channel in other
// integrations (from before the channel was in branch mode) are dropped:
// each branch sees only its own.
func AssignBranch(tx *gorm.DB, channelID, contactID, integrationID, source string, since time.Time) (*CustomerBranch, bool, error) {
	now := Now()
	cb := CustomerBranch{ChannelID: channelID, ContactID: contactID, IntegrationID: integrationID, Source: source,
		Since: since.UTC(), CreatedAt: now, UpdatedAt: now}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&cb)
	if res.Error != nil {
		return nil, false, fmt.Errorf("store: assign branch: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		cur, err := BranchOf(tx, channelID, contactID)
		return cur, false, err
	}
	if err := settleBranch(tx, &cb); err != nil {
		return nil, false, err
	}
	return &cb, true, nil
}

// settleBranch ends the customer's prompt and drops their dialogs of the
// channel in the integrations that are not their branch.
func settleBranch(tx *gorm.DB, cb *CustomerBranch) error {
	if err := tx.Where("channel_id = ? AND contact_id = ?", cb.ChannelID, cb.ContactID).Delete(&BranchPrompt{}).Error; err != nil {
		return fmt.Errorf("store: end branch prompt: %w", err)
	}
	err := tx.Where("channel_id = ? AND contact_id = ? AND integration_id <> ?", cb.ChannelID, cb.ContactID, cb.IntegrationID).Delete(&Dialog{}).Error
	if err != nil {
		return fmt.Errorf("store: drop other branches' dialogs: %w", err)
	}
	return nil
}

// MoveBranchTx puts a customer in another branch from now on, with the
// source to record (a move by an admin, a CRM writing first, or a rule
// choosing again because the customer's branch left the configuration):
// the new branch takes the messages from this moment, the old one keeps in
// its CRM what it had but loses the dialog (it no longer sees the
// customer). A customer still choosing takes what they wrote meanwhile to
// the branch: their branch starts at their first held message (the start
// of their prompt), else now. Moving a customer to the branch they are in
// changes nothing.
func MoveBranchTx(tx *gorm.DB, channelID, contactID, integrationID, source string) (*CustomerBranch, error) {
	cur, err := BranchOf(tx, channelID, contactID)
	if err == nil && cur.IntegrationID == integrationID {
		return cur, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	now := Now()
	cb := CustomerBranch{ChannelID: channelID, ContactID: contactID, IntegrationID: integrationID, Source: source,
		Since: now, CreatedAt: now, UpdatedAt: now}
	if cur != nil {
		cb.CreatedAt = cur.CreatedAt
	} else {
		p, err := PromptOf(tx, channelID, contactID)
		if err != nil {
			return nil, err
		}
		if p != nil && p.CreatedAt.Before(now) {
			cb.Since = p.CreatedAt.UTC()
		}
	}
	err = tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "channel_id"}, {Name: "contact_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"integration_id", "source", "since", "updated_at"})}).Create(&cb).Error
	if err != nil {
		return nil, fmt.Errorf("store: move branch: %w", err)
	}
	if err := settleBranch(tx, &cb); err != nil {
		return nil, err
	}
	return &cb, nil
}

// BranchPrompt is a customer asked to choose a branch: how many menus
// they were sent.
type BranchPrompt struct {
	ChannelID string `gorm:"primaryKey"`
	ContactID string `gorm:"primaryKey"`
	MenusSent int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName is the table's name.
func (BranchPrompt) TableName() string { return "branch_prompts" }

// PromptOf returns the prompt of a customer still choosing, or nil when
// they were never sent a menu (or have chosen).
func PromptOf(tx *gorm.DB, channelID, contactID string) (*BranchPrompt, error) {
	var p BranchPrompt
	err := tx.Where("channel_id = ? AND contact_id = ?", channelID, contactID).First(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: branch prompt: %w", err)
	}
	return &p, nil
}

// DialogIntegrations lists the integrations in which a customer of a
// channel has a dialog: where they were a customer before a branch was
// chosen for them.
func DialogIntegrations(tx *gorm.DB, channelID, contactID string) ([]string, error) {
	var ids []string
	err := tx.Model(&Dialog{}).Where("channel_id = ? AND contact_id = ?", channelID, contactID).
		Order("integration_id").Pluck("integration_id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("store: dialogs of contact %s: %w", contactID, err)
	}
	return ids, nil
}

// ChannelPrompts lists the customers of a channel still choosing a
// branch, and ends their prompts: what a switch away from branch mode
// releases.
func ChannelPrompts(tx *gorm.DB, channelID string) ([]BranchPrompt, error) {
	var out []BranchPrompt
	if err := tx.Where("channel_id = ?", channelID).Order("contact_id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: branch prompts: %w", err)
	}
	if err := tx.Where("channel_id = ?", channelID).Delete(&BranchPrompt{}).Error; err != nil {
		return nil, fmt.Errorf("store: end branch prompts: %w", err)
	}
	return out, nil
}

// CountMenu records one more menu sent to a customer, unless max were
// sent already; it reports whether it counted (and so whether to send).
// The first one starts the prompt at firstAt, the time of the message
// that made the customer choose: from there on their messages are held.
// One statement, so two messages racing on PostgreSQL count twice only
// below max.
func CountMenu(tx *gorm.DB, channelID, contactID string, max int, firstAt time.Time) (bool, error) {
	res := tx.Exec(`INSERT INTO branch_prompts (channel_id, contact_id, menus_sent, created_at, updated_at) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (channel_id, contact_id) DO UPDATE SET menus_sent = branch_prompts.menus_sent + 1, updated_at = excluded.updated_at
WHERE branch_prompts.menus_sent < ?`, channelID, contactID, firstAt.UTC(), Now(), max)
	if res.Error != nil {
		return false, fmt.Errorf("store: count branch menu: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// HeldInbound lists a customer's messages on a channel since a time,
// oldest first: what they wrote while choosing a branch.
func HeldInbound(tx *gorm.DB, channelID, contactID string, since time.Time) ([]Message, error) {
	var out []Message
	err := tx.Where("channel_id = ? AND contact_id = ? AND direction = ? AND created_at >= ?", channelID, contactID, Inbound, since.UTC()).
		Order("id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: held messages: %w", err)
	}
	return out, nil
}

// ownBranchMessage is the condition, on a message aliased m and an
// integration id parameter, that the message is the integration's to
// mirror: on a channel in branch mode only its own customers' messages
// from the moment they chose it (held ones wait for the choice); on any
// other channel every message.
const ownBranchMessage = `(NOT EXISTS (SELECT 1 FROM channel_routing r WHERE r.channel_id = m.channel_id AND r.mode = '` + RoutingBranch + `')
	OR EXISTS (SELECT 1 FROM customer_branches cb WHERE cb.channel_id = m.channel_id AND cb.contact_id = m.contact_id
		AND cb.integration_id = ? AND m.created_at >= cb.since))`

// OwnBranchContacts keeps of contacts those an integration may see: a
// customer of a branch-mode channel is seen only by their branch (one
// still choosing, by none); customers of other channels pass. It is the
// one check for every CRM page that looks customers up (the Bitrix24
// card tab; the amoCRM widget later).
func (s *Store) OwnBranchContacts(ctx context.Context, integrationID string, contacts []Contact) ([]Contact, error) {
	if len(contacts) == 0 {
		return contacts, nil
	}
	ids := make([]string, len(contacts))
	for i, c := range contacts {
		ids[i] = c.ID
	}
	var hidden []string
	err := s.g(ctx).Table("contacts AS c").
		Joins("JOIN channel_routing r ON r.channel_id = c.channel_id AND r.mode = ?", RoutingBranch).
		Joins("LEFT JOIN customer_branches cb ON cb.channel_id = c.channel_id AND cb.contact_id = c.id").
		Where("c.id IN ? AND (cb.integration_id IS NULL OR cb.integration_id <> ?)", ids, integrationID).
		Pluck("c.id", &hidden).Error
	if err != nil {
		return nil, fmt.Errorf("store: contacts of branch: %w", err)
	}
	if len(hidden) == 0 {
		return contacts, nil
	}
	skip := map[string]bool{}
	for _, id := range hidden {
		skip[id] = true
	}
	out := make([]Contact, 0, len(contacts))
	for _, c := range contacts {
		if !skip[c.ID] {
			out = append(out, c)
		}
	}
	return out, nil
}

// ContactTx reads a contact inside a transaction.
func ContactTx(tx *gorm.DB, id string) (*Contact, error) {
	var c Contact
	if err := tx.Where("id = ?", id).First(&c).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// ContactOnChannel finds a channel's customer by the id the messenger
// gives them (wa_id, Instagram-scoped id).
func (s *Store) ContactOnChannel(ctx context.Context, channelID, externalID string) (*Contact, error) {
	var c Contact
	if err := s.g(ctx).Where("channel_id = ? AND external_id = ?", channelID, externalID).First(&c).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}
