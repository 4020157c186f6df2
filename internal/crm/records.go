package crm

import (
	"context"
	"errors"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/store"
)

// RecordLink is the CRM record (lead, deal) a customer of binding b writes
// into: the link kind's link under the binding ("binding id:contact id"),
// else the record the customer's dialog with the same integration and
// channel names, "" when neither.
//
// Why the dialog: a binding's links are keyed by its id, and unbinding and
// binding the channel again (or the integration disabled and installed
// again, which keeps the integration but not its bindings) makes a new
// binding. The customer is the same customer of the same account and
// channel, and their open record is where managers talk to them, so the
// new binding takes it over: the dialog, which is per integration, channel
// and customer, keeps the record across bindings. The record found there
// is linked under the new binding, so it is read once. Whether a closed
// record is written into or replaced stays the connector's on_repeat
// decision, as for any linked record. entity is the binding's record kind:
// a dialog naming a record of another kind (the binding switched from
// leads to deals) is not taken over.
func RecordLink(ctx context.Context, st *store.Store, b *store.ChannelBinding, kind, contactID, entity string) (string, error) {
	id, err := st.RemoteOf(ctx, b.IntegrationID, kind, b.ID+":"+contactID)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return id, err
	}
	d, err := st.FindDialog(ctx, store.DialogKey{IntegrationID: b.IntegrationID, ChannelID: b.ChannelID, ContactID: contactID})
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if d.CRMEntity != entity || d.CRMEntityID == "" {
		return "", nil
	}
	if err := st.Tx(ctx, func(tx *gorm.DB) error {
		return store.PutLink(tx, b.IntegrationID, kind, b.ID+":"+contactID, d.CRMEntityID)
	}); err != nil {
		return "", err
	}
	// PutLink keeps a link written meanwhile (a concurrent job's new
	// record): answer whatever is linked now.
	return st.RemoteOf(ctx, b.IntegrationID, kind, b.ID+":"+contactID)
}
