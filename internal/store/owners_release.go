package store

import (
	"context"
	"fmt"
)

// ReleaseOwner forgets the customer's owner in the scope if it is still
// userID, so that the next AssignOwner or ClaimFirstResponder chooses
// again: what routing does when a customer's owner was switched off in
// the CRM and the customer needs a new record. Naming the owner makes
// two callers releasing at once harmless: only the first deletes, and an
// owner chosen in between is kept.
func (s *Store) ReleaseOwner(ctx context.Context, scopeKey, contactID, userID string) error {
	err := s.g(ctx).Where("scope_key = ? AND contact_id = ? AND user_id = ?", scopeKey, contactID, userID).
		Delete(&OwnerAssignment{}).Error
	if err != nil {
		return fmt.Errorf("store: release owner: %w", err)
	}
	return nil
}
