package crm

import (
	"context"
	"errors"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
)

// Where an integration installed from the CRM's side lands (a marketplace
// install carries no workspace token, so the gateway has to choose).
const (
	// WorkspaceAuto: the default workspace while it is the only one and
	// holds no integration yet (a single-tenant gateway, whose channels
	// are all there), else a new workspace named after the CRM account.
	WorkspaceAuto = "auto"
	// WorkspaceDefault: always the default workspace.
	WorkspaceDefault = "default"
	// WorkspaceNew: always a new workspace named after the CRM account.
	WorkspaceNew = "new"
)

// InstallWorkspace picks the workspace of a new integration installed from
// the CRM's side by rule (WorkspaceAuto when empty or unknown); "" asks
// the store for a new workspace named after the account
// (store.InstallParams.WorkspaceID). Channels made before the install are
// in the default workspace, so a single-tenant gateway puts its first
// integration there, where they can be bound; a second account gets a
// workspace of its own under auto, so that two accounts never share
// customers by accident.
func InstallWorkspace(ctx context.Context, st *store.Store, rule string) (string, error) {
	switch rule {
	case WorkspaceNew:
		return "", nil
	case WorkspaceDefault:
		ws, err := st.EnsureDefaultWorkspace(ctx)
		if err != nil {
			return "", err
		}
		return ws.ID, nil
	}
	all, err := st.ListWorkspaces(ctx, store.All)
	if err != nil {
		return "", err
	}
	if len(all) != 1 || !all[0].IsDefault {
		return "", nil
	}
	there, err := st.ListIntegrations(ctx, store.Scope{WorkspaceID: all[0].ID})
	if err != nil || len(there) > 0 {
		return "", err
	}
	return all[0].ID, nil
}

// ChannelNotHere explains a bind of a channel the integration's workspace
// does not have. Only the operator (scope store.All), who sees every
// workspace, learns that it is in another one and how to move it; a
// workspace token gets the same answer whether or not the channel exists
// elsewhere.
func ChannelNotHere(ctx context.Context, st *store.Store, scope store.Scope, in *store.Integration, channelID string) error {
	if scope == store.All {
		other, err := st.GetChannel(ctx, store.All, channelID)
		if err == nil {
			return fault.Newf(fault.NotFound, "channel_in_other_workspace",
				"channel %s is in workspace %s, not in the integration's workspace %s; move it there with POST /api/v1/channels/%s/move {\"workspace_id\":\"%s\"} and bind again",
				other.ID, other.WorkspaceID, in.WorkspaceID, other.ID, in.WorkspaceID)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return fault.New(fault.NotFound, "channel_not_found",
		"no such channel in the integration's workspace; create it there, or ask the operator to move it (POST /api/v1/channels/{id}/move)")
}
