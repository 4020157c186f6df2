package amocrm

import (
	"context"
	"fmt"

	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The Service is routing's connector for amoCRM accounts.
var _ routing.Connector = (*Service)(nil)

// Mirror parks the binding's messages: leads, notes and amojo are not
// built yet (this file goes when they are). Parked work is re-armed when
// the account is authorised again and retried after routing's park delay,
// so nothing a customer wrote is lost meanwhile.
func (s *Service) Mirror(_ context.Context, d *routing.Delivery, _ []store.MessageView) ([]string, error) {
	return nil, fmt.Errorf("%w: amoCRM connector not available yet (integration %s)", routing.ErrParked, d.Integration.ID)
}

// Status parks status reports for the same reason as Mirror.
func (s *Service) Status(_ context.Context, d *routing.Delivery, _ *store.MessageView) error {
	return fmt.Errorf("%w: amoCRM connector not available yet (integration %s)", routing.ErrParked, d.Integration.ID)
}
