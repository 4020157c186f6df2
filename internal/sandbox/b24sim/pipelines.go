package b24sim

import (
	"fmt"
	"slices"
)

// AddDealCategory adds a deal pipeline to a running portal, as an admin
// would in the CRM settings: crm.category.list lists it and
// crm.status.list (ENTITY_ID DEAL_STAGE_{id}) its NEW, PREPARATION, WON
// and LOSE stages (C{id}:NEW...). An id already taken, or 0 (the default
// pipeline, always there), is an error.
func (s *Server) AddDealCategory(memberID string, c DealCategory) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		return err
	}
	if c.ID <= 0 || slices.ContainsFunc(p.categories, func(have DealCategory) bool { return have.ID == c.ID }) {
		return fmt.Errorf("b24sim: add deal category: id %d is taken or not positive", c.ID)
	}
	p.categories = append(p.categories, c)
	p.seedDealStagesLocked(c.ID)
	return nil
}
