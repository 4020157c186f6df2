package routing

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// One channel may be bound to several CRMs at once (a Bitrix24 Open Line
// and an amoCRM account, say). What a person or an automation tells a
// customer from any of them, or from the cabinet or the API, must show in
// every other one, or the other CRM's operators answer a question already
// answered. Routing carries that, so providers never know each other: the
// CRM a message was written from marks it (MarkOrigin, and LinkOutbound
// when it was written in the CRM's own chat), and every other binding of
// the channel whose connector echoes gets a JobEcho.

// JobEcho shows one of our messages in a CRM's own chat with the customer
// (an OutboundEcho), through the queue so a busy CRM is retried.
const JobEcho = "crm.echo"

// LinkOrigin ties an outbound message to the CRM it was written from
// (crm_links: integration_id is that CRM, local the message, remote the
// CRM's user who wrote it, "" for the CRM's automation). Its name is the
// one amoCRM's author links always had, so those read as origins too.
const LinkOrigin = "sent_by"

// MarkOrigin records, in the transaction that stores an outbound message
// (messaging's OnStored), that integrationID's user userID ("" for an
// automation) wrote it; the echoes in other CRMs name them.
func MarkOrigin(tx *gorm.DB, integrationID, messageID, userID string) error {
	if err := store.PutLink(tx, integrationID, LinkOrigin, messageID, userID); err != nil {
		return fmt.Errorf("routing: origin: %w", err)
	}
	return nil
}

// Origin says who wrote an outbound message, for an echo to name them.
type Origin struct {
	// IntegrationID is the CRM it was written from; "" for the cabinet,
	// the API or the gateway itself.
	IntegrationID string
	// Own says the echoing integration wrote it itself, elsewhere than in
	// its chat (a Bitrix24 card tab, a robot).
	Own bool
	// CRM is the writing CRM's product name ("amoCRM"), "" without one.
	CRM string
	// UserID is the CRM's user who wrote it, "" for an automation;
	// UserName their name ("" when unknown).
	UserID, UserName string
}

// OutboundEcho is what a connector implements to show in its own chat
// with a customer (a Bitrix24 Open Line) the messages sent to them from
// anywhere but that chat. Messages written in the chat itself (those the
// CRM links by LinkOutbound) are never echoed back into it.
type OutboundEcho interface {
	// EchoesOutbound says whether the binding has such a chat. It runs
	// in the transaction that stores the message: it must not call out.
	EchoesOutbound(b *store.ChannelBinding) bool
	// EchoOutbound writes m (d.Contact is its customer) into the chat. A
	// job may run twice (a worker dying before it records the outcome),
	// so it must write nothing twice; errors are classified like Mirror's.
	EchoOutbound(ctx context.Context, d *Delivery, m *store.MessageView, o *Origin) error
}

type echoJob struct {
	BindingID string `json:"binding_id"`
	MessageID string `json:"message_id"`
}

// echoStored queues the echo of our message m into binding b's chat, in
// the transaction that stored it, unless the binding's connector has no
// such chat or the message was written in that very chat (no loops).
// A binding not live now gets its job too: it parks until the CRM is
// authorised again rather than losing the echo.
func (r *Router) echoStored(tx *gorm.DB, b *store.StatedBinding, m *store.Message) error {
	oe, ok := r.connectors[b.IntegrationType].(OutboundEcho)
	if !ok || !oe.EchoesOutbound(&b.ChannelBinding) {
		return nil
	}
	links, err := store.LinksByLocal(tx, LinkOutbound, m.ID)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	for _, l := range links {
		if l.IntegrationID == b.IntegrationID {
			return nil // its own chat's message: the chat shows it already
		}
	}
	_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobEcho, WorkspaceID: b.WorkspaceID, Lane: b.ChannelID,
		Key: "echo:" + b.ID + ":" + m.ContactID, Payload: echoJob{BindingID: b.ID, MessageID: m.ID}, MaxAttempts: 20})
	if err != nil {
		return fmt.Errorf("routing: enqueue echo: %w", err)
	}
	return nil
}

func (r *Router) handleEcho(ctx context.Context, j *queue.Job) error {
	var p echoJob
	b, err := r.jobBinding(ctx, j, &p, &p.BindingID)
	if b == nil {
		return err // nil when unbound since: no chat to echo into
	}
	in, conn, err := r.integration(ctx, b.IntegrationID)
	if err != nil {
		return err
	}
	oe, ok := conn.(OutboundEcho)
	if !ok || !oe.EchoesOutbound(b) {
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
		return nil // erased since
	}
	if err != nil {
		return err
	}
	o, err := r.OriginOf(ctx, in.ID, m.ID)
	if err != nil {
		return err
	}
	err = oe.EchoOutbound(ctx, &Delivery{Integration: in, Binding: b, Channel: ch, Contact: m.Contact, Job: j}, m, o)
	if errors.Is(err, ErrParked) {
		return queue.RetryAfter(parkDelay, err)
	}
	return err
}

// OriginOf says who wrote outbound message messageID, as the integration
// echoingID sees it: its own work, another CRM's (named by its
// connector's product name and, for a user, by its UserNamer or the
// stored users), or neither (the cabinet, the API).
func (r *Router) OriginOf(ctx context.Context, echoingID, messageID string) (*Origin, error) {
	links, err := r.store.LinksOfLocal(ctx, LinkOrigin, messageID)
	if err != nil || len(links) == 0 {
		return &Origin{}, err
	}
	l := links[0]
	o := &Origin{IntegrationID: l.IntegrationID, Own: l.IntegrationID == echoingID, UserID: l.RemoteID}
	from, err := r.store.GetIntegration(ctx, store.All, l.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return o, nil // removed since: an origin without a name
	}
	if err != nil {
		return nil, err
	}
	o.CRM = from.Type
	if n, ok := r.connectors[from.Type].(interface{ DisplayName() string }); ok {
		o.CRM = n.DisplayName()
	}
	if o.UserID == "" {
		return o, nil
	}
	if n, ok := r.connectors[from.Type].(UserNamer); ok {
		o.UserName = n.UserName(ctx, from, o.UserID)
		return o, nil
	}
	users, err := r.store.CRMUsers(ctx, from.ID)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if u.UserID == o.UserID {
			o.UserName = u.Name
		}
	}
	return o, nil
}

// UserNamer is what a connector implements to name its users beyond those
// stored (it may ask its CRM); without it only stored names are known.
type UserNamer interface {
	// UserName is the user's name, "" when unknown; it never fails (a
	// name is a courtesy: the message is shown without it).
	UserName(ctx context.Context, in *store.Integration, userID string) string
}
