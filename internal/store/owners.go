package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Assignment sources: which method wrote an owner_assignments row.
const (
	// OwnerByRotation is an owner AssignOwner picked.
	OwnerByRotation = "rotation"
	// OwnerByClaim is an owner ClaimFirstResponder recorded.
	OwnerByClaim = "claim"
)

// OwnerRotation is one rotation's durable state. The store keeps State as
// the picker hands it back and never reads it: the algorithm is routing's.
type OwnerRotation struct {
	ScopeKey  string `gorm:"primaryKey"`
	State     string
	UpdatedAt time.Time
}

// OwnerAssignment is a customer's owner in a scope, written once.
type OwnerAssignment struct {
	ScopeKey  string `gorm:"primaryKey"`
	ContactID string `gorm:"primaryKey"`
	UserID    string
	// Source is OwnerByRotation or OwnerByClaim.
	Source    string
	CreatedAt time.Time
}

// OwnerPicker chooses the next owner from a rotation's stored state ("" for
// a rotation never picked from) and returns the state to store. It runs
// under the rotation's lock, inside the transaction, so it must not call
// out of the process; an error rolls everything back and AssignOwner
// returns it wrapped.
type OwnerPicker = func(state string) (userID, newState string, err error)

// AssignOwner returns the customer's owner in the scope, choosing one with
// pick if the customer has none yet; fresh reports that this call chose it.
//
// Exactly one owner per customer, and one pick per new customer, however
// many callers and gateway instances ask at once: in one transaction the
// rotation row is locked (SELECT … FOR UPDATE on PostgreSQL; on SQLite the
// single connection already runs one transaction at a time, as with
// RefreshTokens), the assignment is looked up again under the lock, and only
// then is pick called and its state stored together with the assignment. A
// customer who already has an owner costs one read and takes no lock.
//
// A caller retrying after a crash may get fresh == false for the owner it
// chose itself; whatever applies the owner elsewhere (the CRM) should do so
// idempotently rather than only when fresh.
func (s *Store) AssignOwner(ctx context.Context, scopeKey, contactID string, pick OwnerPicker) (userID string, fresh bool, err error) {
	if scopeKey == "" || contactID == "" {
		return "", false, errors.New("store: assign owner: empty scope key or contact id")
	}
	// Returning customers are the common case: answer them without a
	// transaction or a lock.
	if owner, err := s.OwnerOf(ctx, scopeKey, contactID); err == nil {
		return owner, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", false, err
	}
	err = s.Tx(ctx, func(tx *gorm.DB) error {
		userID, fresh = "", false
		rot, err := s.lockRotation(tx, scopeKey)
		if err != nil {
			return err
		}
		// Another caller may have assigned this customer while we waited
		// for the lock; under READ COMMITTED this new statement sees its
		// commit.
		var existing OwnerAssignment
		err = tx.Where("scope_key = ? AND contact_id = ?", scopeKey, contactID).First(&existing).Error
		if err == nil {
			userID = existing.UserID
			return nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("store: owner lookup: %w", err)
		}
		uid, state, err := pick(rot.State)
		if err != nil {
			return err
		}
		if uid == "" {
			return errors.New("store: owner picker chose nobody without an error")
		}
		now := Now()
		if err := tx.Model(&OwnerRotation{}).Where("scope_key = ?", scopeKey).
			Updates(map[string]any{"state": state, "updated_at": now}).Error; err != nil {
			return fmt.Errorf("store: save rotation: %w", err)
		}
		if err := tx.Create(&OwnerAssignment{ScopeKey: scopeKey, ContactID: contactID, UserID: uid,
			Source: OwnerByRotation, CreatedAt: now}).Error; err != nil {
			return fmt.Errorf("store: save owner: %w", err)
		}
		userID, fresh = uid, true
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("store: assign owner: %w", err)
	}
	return userID, fresh, nil
}

// lockRotation reads the scope's rotation row under a row lock, creating it
// first if the scope has never picked. Two instances creating it at once
// meet in the primary key: the loser's INSERT … ON CONFLICT DO NOTHING waits
// for the winner's commit and then locks the winner's row.
func (s *Store) lockRotation(tx *gorm.DB, scopeKey string) (*OwnerRotation, error) {
	var rot OwnerRotation
	for attempt := 0; attempt < 2; attempt++ {
		q := tx.Where("scope_key = ?", scopeKey)
		if s.DB.Dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		err := q.Limit(1).Find(&rot).Error
		if err != nil {
			return nil, fmt.Errorf("store: lock rotation: %w", err)
		}
		if rot.ScopeKey != "" {
			return &rot, nil
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&OwnerRotation{ScopeKey: scopeKey, UpdatedAt: Now()}).Error; err != nil {
			return nil, fmt.Errorf("store: create rotation: %w", err)
		}
	}
	return nil, fmt.Errorf("store: rotation %q neither found nor created", scopeKey)
}

// ClaimFirstResponder records userID as the customer's owner in the scope
// unless someone already is, and returns the owner: the first claim wins
// and later ones (or a rotation's pick) change nothing. won reports that
// userID is the owner, so a claim retried after a crash still wins.
//
// Concurrent claims meet in the primary key: on PostgreSQL a second INSERT
// … ON CONFLICT DO NOTHING waits for the first one's commit and then inserts
// nothing; on SQLite they run one at a time.
func (s *Store) ClaimFirstResponder(ctx context.Context, scopeKey, contactID, userID string) (owner string, won bool, err error) {
	if scopeKey == "" || contactID == "" || userID == "" {
		return "", false, errors.New("store: claim owner: empty scope key, contact id or user id")
	}
	a := OwnerAssignment{ScopeKey: scopeKey, ContactID: contactID, UserID: userID, Source: OwnerByClaim, CreatedAt: Now()}
	if err := s.g(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&a).Error; err != nil {
		return "", false, fmt.Errorf("store: claim owner: %w", err)
	}
	owner, err = s.OwnerOf(ctx, scopeKey, contactID)
	if err != nil {
		return "", false, fmt.Errorf("store: claim owner: %w", err)
	}
	return owner, owner == userID, nil
}

// OwnerOf returns the customer's owner in the scope, or ErrNotFound while
// it has none.
func (s *Store) OwnerOf(ctx context.Context, scopeKey, contactID string) (string, error) {
	var a OwnerAssignment
	err := s.g(ctx).Where("scope_key = ? AND contact_id = ?", scopeKey, contactID).Limit(1).Find(&a).Error
	if err != nil {
		return "", fmt.Errorf("store: owner of: %w", err)
	}
	if a.UserID == "" {
		return "", ErrNotFound
	}
	return a.UserID, nil
}

// OwnerCounts returns how many customers each user owns in the scope: what
// an operator checks a rotation's fairness by.
func (s *Store) OwnerCounts(ctx context.Context, scopeKey string) (map[string]int, error) {
	var rows []struct {
		UserID string
		N      int
	}
	if err := s.g(ctx).Model(&OwnerAssignment{}).Select("user_id, COUNT(*) AS n").
		Where("scope_key = ?", scopeKey).Group("user_id").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: owner counts: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.UserID] = r.N
	}
	return out, nil
}

// DeleteOwnerScope forgets a scope's rotation and assignments, for when its
// binding is removed; a new binding under the same key starts afresh.
func (s *Store) DeleteOwnerScope(ctx context.Context, scopeKey string) error {
	return s.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("scope_key = ?", scopeKey).Delete(&OwnerAssignment{}).Error; err != nil {
			return fmt.Errorf("store: delete owners: %w", err)
		}
		if err := tx.Where("scope_key = ?", scopeKey).Delete(&OwnerRotation{}).Error; err != nil {
			return fmt.Errorf("store: delete rotation: %w", err)
		}
		return nil
	})
}

// DialogOwner is the owner recorded on the customer's dialog with an
// integration's channel ("" when unassigned or no dialog): what survives
// the channel being unbound and bound again, while the per-binding owner
// scopes do not.
func (s *Store) DialogOwner(ctx context.Context, integrationID, channelID, contactID string) (string, error) {
	var owners []string
	err := s.g(ctx).Model(&Dialog{}).Where("integration_id = ? AND channel_id = ? AND contact_id = ?", integrationID, channelID, contactID).
		Limit(1).Pluck("owner_user_id", &owners)
	if err.Error != nil {
		return "", fmt.Errorf("store: dialog owner: %w", err.Error)
	}
	if len(owners) == 0 {
		return "", nil
	}
	return owners[0], nil
}
