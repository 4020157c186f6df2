package app

import (
	"context"
	"log/slog"

	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/secret"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web"
)

// AddUser creates a cabinet user from the command line, the way the
// operator makes a workspace's first owner before anyone can sign in. An
// empty workspace means the default one. It returns the user and the
// password it generated when none was given.
func AddUser(ctx context.Context, cfg *config.Config, log *slog.Logger, workspaceID string, nu web.NewUser) (*store.CabinetUser, string, error) {
	key, err := secretKey(cfg)
	if err != nil {
		return nil, "", err
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return nil, "", err
	}
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	defer db.Close()
	db.Log = log
	if err := db.Migrate(ctx); err != nil {
		return nil, "", err
	}
	st := store.New(db, box)
	if workspaceID == "" {
		ws, err := st.EnsureDefaultWorkspace(ctx)
		if err != nil {
			return nil, "", err
		}
		workspaceID = ws.ID
	}
	return web.CreateUser(ctx, st, store.All, workspaceID, nu)
}
