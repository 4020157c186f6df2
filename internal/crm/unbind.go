package crm

import (
	"context"
	"log/slog"

	"github.com/switchboard/switchboard/internal/store"
)

// Unbind removes a channel's binding to an integration in scope and
// forgets the owners picked under it (a new binding's rotation starts
// afresh; a returning customer's owner and record come back through the
// dialog, see routing.OwnerForNewRecord and RecordLink). It
// returns the integration and the removed binding, for what the provider
// must undo in its CRM. Another workspace's integration is not found.
func Unbind(ctx context.Context, st *store.Store, log *slog.Logger, scope store.Scope, integrationID, channelID string) (*store.Integration, *store.ChannelBinding, error) {
	in, err := st.GetIntegration(ctx, scope, integrationID)
	if err != nil {
		return nil, nil, err
	}
	b, err := st.BindingOf(ctx, in.ID, channelID)
	if err != nil {
		return nil, nil, err
	}
	if _, err := st.DeleteBinding(ctx, in.ID, channelID); err != nil {
		return nil, nil, err
	}
	if err := st.DeleteOwnerScope(ctx, b.ID); err != nil {
		// The binding is gone; stale owner rows only cost space.
		log.Error("crm: forget the unbound channel's owners", "integration_id", in.ID, "binding_id", b.ID, "err", err)
	}
	return in, b, nil
}
