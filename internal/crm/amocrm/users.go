package amocrm

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The Service lists an account's users for the routing settings.
var _ crm.UserDirectory = (*Service)(nil)

// Users reads every user of the account (GET /api/v4/users, all pages),
// active and deactivated alike: rights.is_active says which, so a user the
// account switched off is stored inactive rather than forgotten.
func (s *Service) Users(ctx context.Context, in *store.Integration) ([]store.CRMUser, error) {
	if err := s.usable(in); err != nil {
		return nil, err
	}
	users, err := s.API(in).Users(ctx)
	if err != nil {
		return nil, apiFailure(err, "the account did not list its users; try again later")
	}
	return crmUsers(users), nil
}

// crmUsers are amoCRM's users as the routing core keeps them.
func crmUsers(users []User) []store.CRMUser {
	out := make([]store.CRMUser, 0, len(users))
	for _, u := range users {
		if u.ID <= 0 {
			continue
		}
		out = append(out, store.CRMUser{UserID: strconv.Itoa(u.ID), Name: strings.TrimSpace(u.Name), Email: u.Email, Active: u.Rights.IsActive})
	}
	return out
}

// Pipelines reads the account's lead pipelines with their statuses (the
// bind check and the widget's settings page).
func (s *Service) Pipelines(ctx context.Context, in *store.Integration) ([]Pipeline, error) {
	if err := s.usable(in); err != nil {
		return nil, err
	}
	ps, err := s.API(in).Pipelines(ctx)
	if err != nil {
		return nil, apiFailure(err, "the account did not list its pipelines; try again later")
	}
	return ps, nil
}

// usable refuses calls for an integration that is not amoCRM's or cannot
// be called now, in the API's words.
func (s *Service) usable(in *store.Integration) error {
	if err := s.configured(); err != nil {
		return err
	}
	switch {
	case in.Type != Type:
		return fault.New(fault.Invalid, "integration_type", "this is not an amoCRM integration")
	case in.State == store.IntegrationUninstalled:
		return fault.New(fault.Conflict, crm.CodeUninstalled, "the integration was disabled in amoCRM; an account admin must install the widget again")
	case in.State == store.IntegrationUnpaid:
		return fault.New(fault.Conflict, CodeAccountUnpaid, "the amoCRM account is not paid; its API is closed")
	case !routing.Live(in):
		return fault.New(fault.Conflict, crm.CodeNeedsReauth, "amoCRM refused the integration's tokens; an account admin must install the widget again")
	}
	return nil
}

// apiFailure words a failed API call for the admin who asked.
func apiFailure(err error, message string) error {
	switch {
	case fault.As(err) != nil, errors.Is(err, context.Canceled):
		return err
	case NeedsReauth(err):
		return &fault.Error{Kind: fault.Conflict, Code: crm.CodeNeedsReauth, Message: "amoCRM refused the integration's tokens; an account admin must install the widget again", Err: err}
	case errors.Is(err, ErrPaymentRequired):
		return &fault.Error{Kind: fault.Conflict, Code: CodeAccountUnpaid, Message: "the amoCRM account is not paid; its API is closed", Err: err}
	case errors.Is(err, ErrForbidden):
		return &fault.Error{Kind: fault.Conflict, Code: "crm_forbidden", Message: "amoCRM refused: the installing user needs admin rights", Err: err}
	}
	return &fault.Error{Kind: fault.Upstream, Code: "crm_unavailable", Message: message, Err: err}
}
