package crm

import (
	"context"
	"fmt"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
)

// UserDirectory is a provider that can list its CRM's users: what
// "refresh data from the CRM" reads. A provider implements it next to its
// Integration; the registry finds it by the integration's type.
type UserDirectory interface {
	// Users lists every user the CRM knows for the integration, active
	// or not, through the integration's own client (its rate limiter and
	// token refresh). Refusals are *fault.Error: a CRM that needs its
	// admin to authorise again is a Conflict with CodeNeedsReauth.
	Users(ctx context.Context, in *store.Integration) ([]store.CRMUser, error)
}

// Codes a refresh of the CRM's users may answer.
const (
	// CodeNeedsReauth: the CRM refused our tokens for good; its admin
	// must open or reinstall the app.
	CodeNeedsReauth = "integration_needs_reauth"
	// CodeUninstalled: the app was removed from the CRM.
	CodeUninstalled = "integration_uninstalled"
	// CodeNoUserDirectory: this CRM's provider cannot list users.
	CodeNoUserDirectory = "refresh_unsupported"
)

// RefreshUsers reads the integration's users from its CRM and records
// them (a user no longer listed becomes inactive), returning the stored
// list. It runs while the admin waits: the list is small (pages of 50).
func (r *Registry) RefreshUsers(ctx context.Context, st *store.Store, in *store.Integration) ([]store.CRMUser, error) {
	p, ok := r.Get(in.Type)
	dir, isDir := p.(UserDirectory)
	if !ok || !isDir {
		return nil, fault.Newf(fault.Conflict, CodeNoUserDirectory, "integrations of type %q cannot list their users", in.Type)
	}
	users, err := dir.Users(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := st.ReplaceCRMUsers(ctx, in.ID, users); err != nil {
		return nil, fmt.Errorf("crm: record users of %s: %w", in.ID, err)
	}
	return st.CRMUsers(ctx, in.ID)
}
