package routing

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
)

// This file holds the CRM-neutral decisions a connector applies when it
// creates a customer's record or sees an operator answer: who owns a new
// customer, whether an answer claims one, whether a closed record is
// reopened or replaced, and how an invalid policy is refused. Bitrix24
// applies them today; amoCRM will call the same functions.

// OwnerDeps is what the owner decisions read and write. *store.Store
// implements it.
type OwnerDeps interface {
	OwnerStore
	OwnerOf(ctx context.Context, scopeKey, contactID string) (string, error)
	ReleaseOwner(ctx context.Context, scopeKey, contactID, userID string) error
	CRMUsers(ctx context.Context, integrationID string) ([]store.CRMUser, error)
	DialogOwner(ctx context.Context, integrationID, channelID, contactID string) (string, error)
}

var _ OwnerDeps = (*store.Store)(nil)

// Why a new record got the owner it got, for logs and tests.
const (
	// OwnerNoPolicy: the binding has no owner policy; the record goes to
	// the CRM's default (the installing user), as before policies.
	OwnerNoPolicy = "no_policy"
	// OwnerRotated: round_robin picked (or had picked) the owner.
	OwnerRotated = "round_robin"
	// OwnerNobodyActive: every user of the round_robin group is switched
	// off; the record goes to the default owner.
	OwnerNobodyActive = "no_active_user"
	// OwnerWaiting: first_responder and nobody has answered yet; the
	// record goes to the default owner and the dialog stays unassigned.
	OwnerWaiting = "first_responder_waiting"
	// OwnerClaimed: first_responder, and a member answered this customer
	// before (a repeat customer's new record goes to them).
	OwnerClaimed = "first_responder_claimed"
)

// NewOwner is who owns a new customer's record.
type NewOwner struct {
	// UserID is the CRM user to assign the record and the dialog to; ""
	// leaves the record on the CRM's default owner and the dialog
	// unassigned.
	UserID string
	// Reason is one of the Owner* constants above.
	Reason string
}

// OwnerForNewRecord decides who owns the record a connector is about to
// create for a customer of binding b (scope: the binding's id, so each
// channel of each integration rotates on its own).
//
// A customer who already has an owner in the scope keeps them: a repeat
// customer whose closed deal is replaced by a new one (on_repeat "new")
// goes back to the person who knows them, and the rotation does not
// advance for them. A returning customer is not a new one to share out.
// An owner switched off in the CRM since is released first: round_robin
// then picks among the active, first_responder waits for a new answer.
func OwnerForNewRecord(ctx context.Context, st OwnerDeps, b *store.ChannelBinding, contactID string) (NewOwner, error) {
	p, err := PolicyOf(b)
	if err != nil {
		return NewOwner{}, err
	}
	if p.Owner == nil {
		return NewOwner{Reason: OwnerNoPolicy}, nil
	}
	users, err := st.CRMUsers(ctx, b.IntegrationID)
	if err != nil {
		return NewOwner{}, err
	}
	active := KnownActive(users)
	if err := inheritOwner(ctx, st, b, contactID, active); err != nil {
		return NewOwner{}, err
	}
	if err := releaseInactive(ctx, st, b.ID, contactID, active); err != nil {
		return NewOwner{}, err
	}
	switch p.Owner.Strategy {
	case StrategyRoundRobin:
		uid, _, err := AssignRoundRobin(ctx, st, b.ID, contactID, p.Owner.Users, active)
		if errors.Is(err, ErrNoActiveOwner) {
			return NewOwner{Reason: OwnerNobodyActive}, nil
		}
		if err != nil {
			return NewOwner{}, err
		}
		return NewOwner{UserID: uid, Reason: OwnerRotated}, nil
	case StrategyFirstResponder:
		owner, err := st.OwnerOf(ctx, b.ID, contactID)
		if errors.Is(err, store.ErrNotFound) {
			return NewOwner{Reason: OwnerWaiting}, nil
		}
		if err != nil {
			return NewOwner{}, err
		}
		return NewOwner{UserID: owner, Reason: OwnerClaimed}, nil
	}
	// Validate refuses any other strategy; one stored by hand is treated
	// as no policy rather than stopping the customer's messages.
	return NewOwner{Reason: OwnerNoPolicy}, nil
}

// inheritOwner carries a returning customer's owner over from an earlier
// binding of the same integration and channel. Owner scopes are per
// binding (each rotation is its own) and an unbind forgets them, but the
// dialog (per integration, channel and customer) keeps its owner: when the
// channel is bound again, the person who owned the customer stays their
// owner instead of the customer being shared out (or claimed) afresh. An
// owner switched off in the CRM since is not carried over.
func inheritOwner(ctx context.Context, st OwnerDeps, b *store.ChannelBinding, contactID string, active func(string) bool) error {
	if _, err := st.OwnerOf(ctx, b.ID, contactID); !errors.Is(err, store.ErrNotFound) {
		return err
	}
	prev, err := st.DialogOwner(ctx, b.IntegrationID, b.ChannelID, contactID)
	if err != nil || prev == "" || !active(prev) {
		return err
	}
	// Recorded like a claim: insert-if-absent, so a concurrent pick or
	// claim in the new scope wins and this changes nothing.
	_, _, err = st.ClaimFirstResponder(ctx, b.ID, contactID, prev)
	return err
}

// releaseInactive forgets the customer's owner when the CRM has switched
// them off: a deactivated user is never given a record.
func releaseInactive(ctx context.Context, st OwnerDeps, scopeKey, contactID string, active func(string) bool) error {
	owner, err := st.OwnerOf(ctx, scopeKey, contactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if active(owner) {
		return nil
	}
	return st.ReleaseOwner(ctx, scopeKey, contactID, owner)
}

// Claim is what an operator's answer did to a first_responder dialog.
type Claim struct {
	// Owner is the customer's owner after the answer ("" when the
	// binding does not hand customers to first responders, or the
	// answerer is not in the group).
	Owner string
	// Won reports that the answerer is the owner: this answer or an
	// earlier one of theirs claimed the customer.
	Won bool
}

// ClaimByAnswer is called when CRM user userID answered the customer of
// binding b: under a first_responder policy the first active member of
// the group to answer becomes the owner. Any other policy, a non-member
// or a later answerer changes nothing. Repeating the call for the winner
// answers Won again, so a connector that failed to apply the claim can
// apply it on the winner's next answer.
func ClaimByAnswer(ctx context.Context, st OwnerDeps, b *store.ChannelBinding, contactID, userID string) (Claim, error) {
	if userID == "" {
		return Claim{}, nil
	}
	p, err := PolicyOf(b)
	if err != nil {
		return Claim{}, err
	}
	if p.Owner == nil || p.Owner.Strategy != StrategyFirstResponder {
		return Claim{}, nil
	}
	users, err := st.CRMUsers(ctx, b.IntegrationID)
	if err != nil {
		return Claim{}, err
	}
	if err := inheritOwner(ctx, st, b, contactID, KnownActive(users)); err != nil {
		return Claim{}, err
	}
	owner, won, err := ClaimFirstResponder(ctx, st, b.ID, contactID, userID, *p.Owner, KnownActive(users))
	if errors.Is(err, ErrNotInGroup) {
		return Claim{}, nil
	}
	if err != nil {
		return Claim{}, err
	}
	return Claim{Owner: owner, Won: won}, nil
}

// StartNewRecord says whether a customer message goes into a new record
// instead of the customer's linked one: only when the linked record is
// closed (won or lost) and the binding's on_repeat is "new".
func StartNewRecord(p BindingPolicy, linkedClosed bool) bool {
	return linkedClosed && p.OnRepeat == OnRepeatNew
}

// CodeFieldNotAllowed refuses a field that does not belong to the
// binding's mode.
const CodeFieldNotAllowed = "field_not_allowed"

// ValidateBinding checks a bind request's policy for an integration
// whose CRM users (as last read) are users, and answers the API's
// refusal: a fault.Invalid with the PolicyError's code, its field in
// Field and in the message. crmMode false allows only the name: owners,
// repeat handling and mirroring belong to bindings that write into CRM
// records themselves.
func ValidateBinding(p BindingPolicy, crmMode bool, integrationID string, users []store.CRMUser) error {
	if !crmMode {
		for _, f := range []struct {
			name string
			set  bool
		}{{"owner", p.Owner != nil}, {"on_repeat", p.OnRepeat != ""}, {"mirror", p.Mirror != ""}} {
			if f.set {
				return &fault.Error{Kind: fault.Invalid, Code: CodeFieldNotAllowed, Field: f.name,
					Message: f.name + ": belongs to crm mode; an Open Line's conversations are routed by the CRM itself"}
			}
		}
	}
	err := p.Validate(KnownActive(users))
	var pe *PolicyError
	if !errors.As(err, &pe) {
		return err
	}
	msg := pe.Error()
	if pe.Code == CodeOwnerUserUnknown {
		refresh := fmt.Sprintf("POST /api/v1/integrations/%s/refresh", integrationID)
		if len(users) == 0 {
			msg += "; the CRM's user list was never read: load it with " + refresh + " and bind again"
		} else {
			msg += "; if the user was added or switched on since, refresh the list with " + refresh
		}
	}
	return &fault.Error{Kind: fault.Invalid, Code: pe.Code, Message: msg, Field: pe.Field, Err: err}
}

// TakeByAnswer is ClaimByAnswer carried through for a CRM: when userID
// wins the customer, the dialog's owner becomes userID and reassign (the
// CRM's durable job that gives the record to the owner) is queued in the
// same transaction. applied reports that this call changed the owner: it
// is false when the claim was lost, or applied by an earlier answer (the
// dialog's owner shows it, so a winner whose apply failed gets it applied
// on their next answer).
func TakeByAnswer(ctx context.Context, st *store.Store, b *store.ChannelBinding, contactID, userID string, reassign func(tx *gorm.DB) error) (applied bool, err error) {
	c, err := ClaimByAnswer(ctx, st, b, contactID, userID)
	if err != nil || !c.Won {
		return false, err
	}
	k := store.DialogKey{WorkspaceID: b.WorkspaceID, IntegrationID: b.IntegrationID, ChannelID: b.ChannelID, ContactID: contactID}
	d, err := st.FindDialog(ctx, k)
	switch {
	case err == nil && d.OwnerUserID == userID:
		return false, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return false, err
	}
	err = st.Tx(ctx, func(tx *gorm.DB) error {
		if _, err := store.SetDialogOwner(tx, k, userID, false); err != nil {
			return err
		}
		return reassign(tx)
	})
	return err == nil, err
}
