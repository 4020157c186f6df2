package b24sim

import (
	"fmt"
	"slices"
)

// PutUser adds an employee to a running portal, or replaces the one with
// the same ID, as the portal's admin would in its staff settings: user.get
// lists it from then on. A zero ID is an error.
func (s *Server) PutUser(memberID string, u User) error {
	if u.ID <= 0 {
		return fmt.Errorf("b24sim: put user: id %d is not positive", u.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(p.users, func(have User) bool { return have.ID == u.ID }); i >= 0 {
		p.users[i] = u
		return nil
	}
	p.users = append(p.users, u)
	return nil
}

// SetUserActive deactivates (or brings back) an employee: user.get keeps
// listing a deactivated user with ACTIVE false, as Bitrix24 does, and a
// FILTER ACTIVE true leaves them out. An unknown user is an error.
func (s *Server) SetUserActive(memberID string, userID int, active bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(p.users, func(have User) bool { return have.ID == userID })
	if i < 0 {
		return fmt.Errorf("b24sim: set user active: portal %s has no user %d", memberID, userID)
	}
	p.users[i].Inactive = !active
	return nil
}

// Users returns a copy of the portal's employees.
func (p *Portal) Users() []User {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return slices.Clone(p.users)
}
