package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/switchboard/switchboard/internal/store"
)

// Owner strategies (issue 7, item 3).
const (
	// StrategyFirstResponder leaves a new record unassigned while the group
	// is notified; the first member who answers becomes its owner.
	StrategyFirstResponder = "first_responder"
	// StrategyRoundRobin hands new customers to the group in turn, in
	// proportion to each member's weight.
	StrategyRoundRobin = "round_robin"
)

// Weight bounds: a weight is a share, 1 to 100 of them per user.
const (
	MinOwnerWeight = 1
	MaxOwnerWeight = 100
	// MaxOwnerUsers bounds a group so the rotation state (one number per
	// user) stays a small row.
	MaxOwnerUsers = 1000
)

// Error codes of an invalid owner policy, for the API to map to a 4xx.
const (
	CodeOwnerStrategy     = "owner_strategy_invalid"
	CodeOwnerUsersEmpty   = "owner_users_empty"
	CodeOwnerUsersTooMany = "owner_users_too_many"
	CodeOwnerUserID       = "owner_user_id_invalid"
	CodeOwnerUserUnknown  = "owner_user_unknown"
	CodeOwnerDuplicate    = "owner_user_duplicate"
	CodeOwnerWeight       = "owner_weight_out_of_range"
)

// OwnerPolicy says who becomes the owner of a new customer's record: the
// "owner" setting of a binding.
type OwnerPolicy struct {
	Strategy string         `json:"strategy"`
	Users    []WeightedUser `json:"users"`
}

// WeightedUser is a CRM user in an owner group. Weight is the user's share
// in a round-robin; first_responder ignores it (0 there means unset).
type WeightedUser struct {
	UserID string `json:"user_id"`
	Weight int    `json:"weight,omitempty"`
}

// PolicyError is an invalid owner policy: Field names the JSON path of the
// offending value (e.g. "owner.users[2].weight") so the API can say which.
type PolicyError struct {
	Field   string
	Code    string
	Message string
}

func (e *PolicyError) Error() string { return e.Field + ": " + e.Message }

// Validate checks the policy. known reports whether a user id is an active
// user of the CRM (a deactivated user may not be configured); nil skips that
// check, for callers that cannot ask the CRM. The first problem found is
// returned as a *PolicyError.
func (p OwnerPolicy) Validate(known func(userID string) bool) error {
	switch p.Strategy {
	case StrategyRoundRobin, StrategyFirstResponder:
	default:
		return &PolicyError{"owner.strategy", CodeOwnerStrategy,
			fmt.Sprintf("strategy %q is not %q or %q", p.Strategy, StrategyFirstResponder, StrategyRoundRobin)}
	}
	// An empty first_responder group means anyone in the CRM may answer
	// first; a rotation needs someone to rotate over.
	if p.Strategy == StrategyRoundRobin && len(p.Users) == 0 {
		return &PolicyError{"owner.users", CodeOwnerUsersEmpty, "round_robin needs at least one user"}
	}
	if len(p.Users) > MaxOwnerUsers {
		return &PolicyError{"owner.users", CodeOwnerUsersTooMany, fmt.Sprintf("at most %d users", MaxOwnerUsers)}
	}
	seen := make(map[string]int, len(p.Users))
	for i, u := range p.Users {
		field := fmt.Sprintf("owner.users[%d]", i)
		if u.UserID == "" || len(u.UserID) > 64 {
			return &PolicyError{field + ".user_id", CodeOwnerUserID, "user_id must be 1 to 64 characters"}
		}
		if j, dup := seen[u.UserID]; dup {
			return &PolicyError{field + ".user_id", CodeOwnerDuplicate,
				fmt.Sprintf("user %q is already owner.users[%d]", u.UserID, j)}
		}
		seen[u.UserID] = i
		weightSet := p.Strategy == StrategyRoundRobin || u.Weight != 0
		if weightSet && (u.Weight < MinOwnerWeight || u.Weight > MaxOwnerWeight) {
			return &PolicyError{field + ".weight", CodeOwnerWeight,
				fmt.Sprintf("weight %d is outside %d..%d", u.Weight, MinOwnerWeight, MaxOwnerWeight)}
		}
		if known != nil && !known(u.UserID) {
			return &PolicyError{field + ".user_id", CodeOwnerUserUnknown,
				fmt.Sprintf("user %q is not an active user of the CRM", u.UserID)}
		}
	}
	return nil
}

// RotationState is a smooth weighted round-robin's memory between picks,
// stored as JSON per rotation.
type RotationState struct {
	// Group is the active users, with their weights, the last pick chose
	// among. A pick that finds a different group starts a new cycle.
	Group []WeightedUser `json:"group,omitempty"`
	// Current holds Group[i]'s current value at Current[i].
	Current []int `json:"current,omitempty"`
}

// Pick chooses the next owner by nginx's smooth weighted round-robin: every
// active user's weight is added to its current value, the largest current
// value wins (the earliest listed on a tie) and the total weight is
// subtracted from the winner. Over any run of picks with one group, each
// user's count stays within one of its exact share (picks × weight ÷ total),
// and the heavy users' turns are spread out instead of coming in a row.
//
// Users for whom active says false (deactivated in the CRM, switched off)
// are left out. When the active group differs from the state's (someone left
// or came back, a weight changed), every current value starts again from 0:
// values built up against the old total can differ by more than the new
// total, and carried over they would hand one user a run of customers in a
// row (weights 100, 1, 1 losing the 100 could give one of the 1s dozens of
// customers in a row). Starting from 0 keeps every user within one of its
// share from the change on and gives a returning user no burst to "catch
// up"; the cost is that each change may give the first-listed heaviest user
// one pick early, and changes are rare (an administrator's action).
//
// Pick is pure: the state passed in is not modified. It returns "" and the
// state unchanged when nobody is active. Users with a weight below 1 are
// never picked (Validate refuses them).
func Pick(state RotationState, users []WeightedUser, active func(userID string) bool) (string, RotationState) {
	group := make([]WeightedUser, 0, len(users))
	total := 0
	for _, u := range users {
		if u.Weight < 1 || (active != nil && !active(u.UserID)) {
			continue
		}
		group = append(group, u)
		total += u.Weight
	}
	if len(group) == 0 {
		return "", state
	}
	cur := make([]int, len(group))
	if slices.Equal(group, state.Group) && len(state.Current) == len(group) {
		copy(cur, state.Current)
	}
	best := 0
	for i, u := range group {
		cur[i] += u.Weight
		if cur[i] > cur[best] {
			best = i
		}
	}
	cur[best] -= total
	return group[best].UserID, RotationState{Group: group, Current: cur}
}

// ErrNoActiveOwner: every user of a round-robin group is switched off, so
// nobody can be assigned; the caller leaves the record on its default owner.
var ErrNoActiveOwner = errors.New("routing: no active user in the owner group")

// ErrNotInGroup: a user outside a first_responder group answered; the answer
// does not make them the owner.
var ErrNotInGroup = errors.New("routing: user is not an active member of the owner group")

// OwnerStore is what owner assignment needs from the database.
// *store.Store implements it.
type OwnerStore interface {
	AssignOwner(ctx context.Context, scopeKey, contactID string, pick func(state string) (string, string, error)) (string, bool, error)
	ClaimFirstResponder(ctx context.Context, scopeKey, contactID, userID string) (string, bool, error)
}

// AssignRoundRobin returns the customer's owner in the scope, picking the
// next one of users by Pick if the customer has none; fresh reports that
// this call picked. The rotation's state lives in the database under a row
// lock, so the sequence survives restarts and stays exact across gateway
// instances. It answers ErrNoActiveOwner when nobody in users is active.
//
// active runs while the rotation's row is locked, so it must answer from
// memory (the CRM's user list as last fetched), never by calling the CRM:
// a slow answer would hold up every assignment of the scope.
func AssignRoundRobin(ctx context.Context, st OwnerStore, scopeKey, contactID string, users []WeightedUser, active func(userID string) bool) (userID string, fresh bool, err error) {
	pick := func(raw string) (string, string, error) {
		var state RotationState
		if raw != "" {
			// A state we cannot read only costs the cycle's position:
			// start a new cycle rather than stop assigning.
			if err := json.Unmarshal([]byte(raw), &state); err != nil {
				state = RotationState{}
			}
		}
		uid, next := Pick(state, users, active)
		if uid == "" {
			return "", "", ErrNoActiveOwner
		}
		b, err := json.Marshal(next)
		if err != nil {
			return "", "", fmt.Errorf("routing: encode rotation: %w", err)
		}
		return uid, string(b), nil
	}
	return st.AssignOwner(ctx, scopeKey, contactID, pick)
}

// ClaimFirstResponder makes userID the customer's owner if they are the
// first eligible user to answer: an active member of the policy's group (any
// active user when the group is empty). owner is the customer's owner after
// the call and won reports that it is userID. A user outside the group gets
// ErrNotInGroup and changes nothing.
func ClaimFirstResponder(ctx context.Context, st OwnerStore, scopeKey, contactID, userID string, p OwnerPolicy, active func(userID string) bool) (owner string, won bool, err error) {
	member := len(p.Users) == 0 || slices.ContainsFunc(p.Users, func(u WeightedUser) bool { return u.UserID == userID })
	if !member || (active != nil && !active(userID)) {
		return "", false, ErrNotInGroup
	}
	return st.ClaimFirstResponder(ctx, scopeKey, contactID, userID)
}

var _ OwnerStore = (*store.Store)(nil)
