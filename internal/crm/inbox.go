package crm

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// A CRM's caller is refused with one of these; the CRM words the answer
// (its codes name its own ids, such as Bitrix24's member_id).
var (
	// ErrUnknownCaller: no integration of the type has the caller's id.
	ErrUnknownCaller = errors.New("crm: no integration has this id")
	// ErrBadCallerToken: the integration exists, the token is not its.
	ErrBadCallerToken = errors.New("crm: the caller's token does not match")
)

// Inbox takes events a CRM posts to us: it checks who posts, keeps the
// event with the job that will handle it, and wakes the queue. The CRM
// never resends an event we answered, so nothing is done before the
// answer but storing it.
type Inbox struct {
	store *store.Store
	// wake tells the queue's workers there is new work.
	wake func()
}

// NewInbox builds an inbox on st; wake is called after each stored event.
func NewInbox(st *store.Store, wake func()) *Inbox { return &Inbox{store: st, wake: wake} }

// Caller finds the integration of typ whose external id is externalID and
// checks, in constant time, that token is the application token it was
// installed with. It answers ErrUnknownCaller or ErrBadCallerToken for a
// caller that is not one, and any other error for our own failures.
func (b *Inbox) Caller(ctx context.Context, typ, externalID, token string) (*store.Integration, error) {
	if externalID == "" {
		return nil, ErrUnknownCaller
	}
	in, err := b.store.IntegrationByExternal(ctx, typ, externalID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownCaller
	}
	if err != nil {
		return nil, fmt.Errorf("crm: caller %s: %w", externalID, err)
	}
	sec, err := b.store.Secrets(in)
	if err != nil {
		return nil, fmt.Errorf("crm: caller %s: %w", externalID, err)
	}
	if !SameToken(token, sec.ApplicationToken) {
		return nil, ErrBadCallerToken
	}
	return in, nil
}

// Keep stores ev with the job job(ev) makes for it, in one transaction,
// and wakes the queue. An event whose dedup key was kept before is not
// stored again, nor given a second job.
func (b *Inbox) Keep(ctx context.Context, ev *store.CRMEvent, job func(ev *store.CRMEvent) queue.NewJob) error {
	err := b.store.Tx(ctx, func(tx *gorm.DB) error {
		inserted, err := store.InsertCRMEvent(tx, ev)
		if err != nil || !inserted {
			return err
		}
		_, err = queue.Enqueue(tx, job(ev))
		return err
	})
	if err != nil {
		return fmt.Errorf("crm: keep %s event: %w", ev.Kind, err)
	}
	b.wake()
	return nil
}

// SameToken compares a presented secret with the stored one in constant
// time; an empty stored secret matches nothing.
func SameToken(presented, stored string) bool {
	return stored != "" && presented != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(stored)) == 1
}
