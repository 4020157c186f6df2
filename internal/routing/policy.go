package routing

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/switchboard/switchboard/internal/store"
)

// Mirror modes of a binding (item 6): how customer messages reach the
// CRM's record.
const (
	MirrorEach   = "each"
	MirrorHourly = "hourly"
	MirrorDaily  = "daily"
	MirrorNone   = "none"
)

// What a message from a customer whose last record is closed does (item
// 3.1).
const (
	// OnRepeatLastClosed writes into the customer's last record, closed or
	// not.
	OnRepeatLastClosed = "last_closed"
	// OnRepeatNew opens a new record in the binding's pipeline and stage.
	OnRepeatNew = "new"
)

// Error codes of an invalid binding policy.
const (
	CodeBindingName = "name_invalid"
	CodeMirrorMode  = "mirror_invalid"
	CodeOnRepeat    = "on_repeat_invalid"
)

// MaxBindingName bounds a channel's name inside an integration.
const MaxBindingName = 100

// BindingPolicy is the CRM-neutral part of a binding in CRM mode: items 1,
// 3, 3.1 and 6. Each CRM's bind request carries it next to its own fields.
type BindingPolicy struct {
	Name string `json:"name,omitempty"`
	// Owner nil leaves new records on the integration's installing user.
	Owner    *OwnerPolicy `json:"owner,omitempty"`
	OnRepeat string       `json:"on_repeat,omitempty"`
	Mirror   string       `json:"mirror,omitempty"`
}

// Validate checks the policy as OwnerPolicy.Validate does, with known the
// CRM's active users (nil skips that check). Empty OnRepeat and Mirror mean
// their defaults. The first problem is a *PolicyError naming the field.
func (p BindingPolicy) Validate(known func(userID string) bool) error {
	if utf8.RuneCountInString(p.Name) > MaxBindingName || !utf8.ValidString(p.Name) {
		return &PolicyError{"name", CodeBindingName, fmt.Sprintf("name is at most %d characters of text", MaxBindingName)}
	}
	switch p.Mirror {
	case "", MirrorEach, MirrorHourly, MirrorDaily, MirrorNone:
	default:
		return &PolicyError{"mirror", CodeMirrorMode,
			fmt.Sprintf("mirror %q is not %q, %q, %q or %q", p.Mirror, MirrorEach, MirrorHourly, MirrorDaily, MirrorNone)}
	}
	switch p.OnRepeat {
	case "", OnRepeatLastClosed, OnRepeatNew:
	default:
		return &PolicyError{"on_repeat", CodeOnRepeat,
			fmt.Sprintf("on_repeat %q is not %q or %q", p.OnRepeat, OnRepeatLastClosed, OnRepeatNew)}
	}
	if p.Owner != nil {
		return p.Owner.Validate(known)
	}
	return nil
}

// Apply writes the policy into the binding's columns, defaults filled in.
func (p BindingPolicy) Apply(b *store.ChannelBinding) {
	b.Name = p.Name
	b.OnRepeat, b.Mirror = OnRepeatLastClosed, MirrorEach
	if p.OnRepeat != "" {
		b.OnRepeat = p.OnRepeat
	}
	if p.Mirror != "" {
		b.Mirror = p.Mirror
	}
	b.OwnerPolicy = ""
	if p.Owner != nil {
		raw, err := json.Marshal(p.Owner)
		if err == nil { // a struct of strings and ints always marshals
			b.OwnerPolicy = string(raw)
		}
	}
}

// PolicyOf reads a binding's policy back. A stored owner policy that no
// longer decodes is reported rather than taken as "none": the records
// would silently go to the installing user.
func PolicyOf(b *store.ChannelBinding) (BindingPolicy, error) {
	p := BindingPolicy{Name: b.Name, OnRepeat: b.OnRepeat, Mirror: b.Mirror}
	if p.OnRepeat == "" {
		p.OnRepeat = OnRepeatLastClosed
	}
	if p.Mirror == "" {
		p.Mirror = MirrorEach
	}
	if b.OwnerPolicy != "" {
		var o OwnerPolicy
		if err := json.Unmarshal([]byte(b.OwnerPolicy), &o); err != nil {
			return p, fmt.Errorf("routing: binding %s owner policy: %w", b.ID, err)
		}
		p.Owner = &o
	}
	return p, nil
}

// KnownActive answers OwnerPolicy.Validate's question from a CRM's user
// list as last read.
func KnownActive(users []store.CRMUser) func(userID string) bool {
	active := make(map[string]bool, len(users))
	for _, u := range users {
		if u.Active {
			active[u.UserID] = true
		}
	}
	return func(id string) bool { return active[id] }
}
