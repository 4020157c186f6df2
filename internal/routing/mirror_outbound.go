package routing

import (
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/store"
)

// OutboundMirror is what a connector implements to have the messages we
// send to a binding's customers (from the CRM, the cabinet, the API, an
// automation) mirrored with the customers' own, in the same order and by
// the same mode (each, hourly, daily, none): the record then reads as the
// conversation did. A connector without it gets customers' messages only.
// Mirror and MirrorBatches then meet outbound messages (Direction
// store.Outbound) among the inbound ones, and word their author.
type OutboundMirror interface {
	// MirrorsOutbound says whether the binding's record takes our
	// messages (a CRM whose chat already shows them says no).
	MirrorsOutbound(b *store.ChannelBinding) bool
}

// outboundStored routes one of our messages to a live binding whose
// connector mirrors them, in the transaction that stored it: it is marked
// for the integration (store.MirrorOutbound: only marked messages are
// mirrored, never those sent before the connector started) and then goes
// the way a customer's message goes.
func (r *Router) outboundStored(tx *gorm.DB, b *store.StatedBinding, m *store.Message) error {
	om, ok := r.connectors[b.IntegrationType].(OutboundMirror)
	if !ok || !b.Live() || !om.MirrorsOutbound(&b.ChannelBinding) {
		return nil
	}
	if MirrorModeOf(&b.ChannelBinding) != MirrorNone {
		if err := store.PutLink(tx, b.IntegrationID, store.MirrorOutbound, m.ID, b.ID); err != nil {
			return fmt.Errorf("routing: %w", err)
		}
	}
	return r.mirrorStored(tx, &b.ChannelBinding, m)
}
