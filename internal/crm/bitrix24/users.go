package bitrix24

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The Service lists a portal's users for the routing settings.
var _ crm.UserDirectory = (*Service)(nil)

// maxUserPages bounds one refresh: 200 pages of 50 is 10,000 employees,
// more than any portal the gateway serves; a portal answering "next"
// forever must not keep the admin's request alive.
const maxUserPages = 200

// userRow is what a refresh reads of a user.get row.
type userRow struct {
	ID       json.RawMessage `json:"ID"`
	Active   json.RawMessage `json:"ACTIVE"`
	Name     string          `json:"NAME"`
	LastName string          `json:"LAST_NAME"`
	Email    string          `json:"EMAIL"`
}

// Users reads every user of the portal with user.get, page by page (50 a
// page, by "start"), active and deactivated alike: the ACTIVE flag says
// which, so a user the portal deactivated is stored inactive rather than
// forgotten.
func (s *Service) Users(ctx context.Context, in *store.Integration) ([]store.CRMUser, error) {
	switch {
	case in.Type != Type:
		return nil, fault.New(fault.Invalid, "integration_type", "this is not a Bitrix24 integration")
	case in.State == store.IntegrationUninstalled:
		return nil, fault.New(fault.Conflict, crm.CodeUninstalled, "the app was removed from this portal")
	case !routing.Live(in):
		return nil, fault.New(fault.Conflict, crm.CodeNeedsReauth, "the portal revoked the app's access; its admin must open or reinstall the app")
	}
	var out []store.CRMUser
	start := 0
	for page := 0; ; page++ {
		if page == maxUserPages {
			return nil, fault.Newf(fault.Upstream, "crm_users_too_many", "the portal lists more than %d users", maxUserPages*PageSize)
		}
		resp, err := s.client.CallResult(ctx, in.ID, "user.get", map[string]any{"sort": "ID", "order": "ASC", "start": start})
		if err != nil {
			return nil, usersError(err)
		}
		var rows []userRow
		if err := json.Unmarshal(resp.Result, &rows); err != nil {
			return nil, &fault.Error{Kind: fault.Upstream, Code: "crm_answer_invalid", Message: "the portal's user list did not decode", Err: err}
		}
		for _, r := range rows {
			id := strings.Trim(string(r.ID), `"`)
			if id == "" || id == "null" {
				continue
			}
			out = append(out, store.CRMUser{UserID: id, Name: strings.TrimSpace(r.Name + " " + r.LastName), Email: r.Email, Active: yes(r.Active)})
		}
		if resp.Next <= start {
			return out, nil
		}
		start = resp.Next
	}
}

// yes reads Bitrix24's booleans: true, "Y", "true", 1.
func yes(raw json.RawMessage) bool {
	switch strings.ToUpper(strings.Trim(string(raw), `"`)) {
	case "TRUE", "Y", "1":
		return true
	}
	return false
}

// usersError words a failed user.get for the admin who asked.
func usersError(err error) error {
	if fe := fault.As(err); fe != nil {
		return err
	}
	if IsReauthRequired(err) {
		return &fault.Error{Kind: fault.Conflict, Code: crm.CodeNeedsReauth, Message: "the portal refused the app's tokens; its admin must open or reinstall the app", Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &fault.Error{Kind: fault.Upstream, Code: "crm_unavailable", Message: "the portal did not list its users; try again later", Err: err}
}
