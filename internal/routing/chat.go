package routing

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// JobChat relays one customer message into a CRM's own chat (amoCRM's
// Chats API), beside whatever the binding's mirror mode writes into the
// record: managers answer in that chat, so every message goes there as it
// comes, whether notes are written each, hourly, daily or never.
const JobChat = "crm.chat"

// ChatConnector is what a CRM implements to take customers' messages into
// its own chat. A connector without it has no chat path.
type ChatConnector interface {
	// ChatEnabled says whether the gateway relays into the CRM's chat at
	// all (its chat credentials are configured). It runs in the ingest
	// transaction, so it must not call out.
	ChatEnabled() bool
	// Chat relays one customer message (d.Contact is its customer). The
	// jobs of one customer of a binding run one at a time, in order; a
	// returned error is retried like Mirror's, so Chat must be idempotent
	// (the CRM's chat takes our message id as its key).
	Chat(ctx context.Context, d *Delivery, m *store.MessageView) error
}

type chatJob struct {
	BindingID string `json:"binding_id"`
	MessageID string `json:"message_id"`
}

// chatStored queues the relay of a customer message of a live binding
// whose connector has a chat path, in the ingest transaction. The key is
// per binding and customer: one customer's messages keep their order, and
// a customer whose messages the chat refuses holds up nobody else.
func (r *Router) chatStored(tx *gorm.DB, b *store.StatedBinding, m *store.Message) error {
	cc, ok := r.connectors[b.IntegrationType].(ChatConnector)
	if !ok || !cc.ChatEnabled() {
		return nil
	}
	_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobChat, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID,
		Key: "chat:" + b.ID + ":" + m.ContactID, Payload: chatJob{BindingID: b.ID, MessageID: m.ID}, MaxAttempts: 50})
	if err != nil {
		return fmt.Errorf("routing: enqueue chat: %w", err)
	}
	return nil
}

func (r *Router) handleChat(ctx context.Context, j *queue.Job) error {
	var p chatJob
	b, err := r.jobBinding(ctx, j, &p, &p.BindingID)
	if b == nil {
		return err // nil when unbound since: no chat to relay to
	}
	in, conn, err := r.integration(ctx, b.IntegrationID)
	if err != nil {
		return err
	}
	cc, ok := conn.(ChatConnector)
	if !ok || !cc.ChatEnabled() {
		return nil
	}
	if run, err := workable(in); !run {
		return err
	}
	ch, err := r.store.GetChannel(ctx, store.All, b.ChannelID)
	if err != nil {
		return err
	}
	m, err := r.store.GetMessage(ctx, store.All, p.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // erased since (retention, the customer's request)
	}
	if err != nil {
		return err
	}
	err = cc.Chat(ctx, &Delivery{Integration: in, Binding: b, Channel: ch, Contact: m.Contact, Job: j}, m)
	if errors.Is(err, ErrParked) {
		return queue.RetryAfter(parkDelay, err)
	}
	return err
}
