package routing_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// memOwners is an in-memory routing.OwnerDeps: one rotation state and
// one owner per (scope, customer), as the store keeps them.
type memOwners struct {
	state  map[string]string
	owners map[string]string
	users  []store.CRMUser
	picks  int
}

func newMemOwners(users ...store.CRMUser) *memOwners {
	return &memOwners{state: map[string]string{}, owners: map[string]string{}, users: users}
}

func (m *memOwners) AssignOwner(_ context.Context, scope, contact string, pick func(string) (string, string, error)) (string, bool, error) {
	if o, ok := m.owners[scope+"/"+contact]; ok {
		return o, false, nil
	}
	uid, st, err := pick(m.state[scope])
	if err != nil {
		return "", false, err
	}
	m.picks++
	m.state[scope], m.owners[scope+"/"+contact] = st, uid
	return uid, true, nil
}

func (m *memOwners) ClaimFirstResponder(_ context.Context, scope, contact, user string) (string, bool, error) {
	k := scope + "/" + contact
	if _, ok := m.owners[k]; !ok {
		m.owners[k] = user
	}
	return m.owners[k], m.owners[k] == user, nil
}

func (m *memOwners) OwnerOf(_ context.Context, scope, contact string) (string, error) {
	if o, ok := m.owners[scope+"/"+contact]; ok {
		return o, nil
	}
	return "", store.ErrNotFound
}

func (m *memOwners) ReleaseOwner(_ context.Context, scope, contact, user string) error {
	if m.owners[scope+"/"+contact] == user {
		delete(m.owners, scope+"/"+contact)
	}
	return nil
}

func (m *memOwners) CRMUsers(context.Context, string) ([]store.CRMUser, error) { return m.users, nil }

func (m *memOwners) DialogOwner(context.Context, string, string, string) (string, error) {
	return "", nil
}

func crmUser(id string, active bool) store.CRMUser {
	return store.CRMUser{UserID: id, Active: active}
}

func binding(t *testing.T, owner *routing.OwnerPolicy) *store.ChannelBinding {
	t.Helper()
	b := &store.ChannelBinding{ID: "b1", IntegrationID: "i1", Mode: "crm"}
	routing.BindingPolicy{Owner: owner}.Apply(b)
	return b
}

func TestOwnerForNewRecord(t *testing.T) {
	ctx := context.Background()
	rr := &routing.OwnerPolicy{Strategy: routing.StrategyRoundRobin, Users: []routing.WeightedUser{{UserID: "3", Weight: 1}, {UserID: "4", Weight: 2}, {UserID: "9", Weight: 5}}}
	fr := &routing.OwnerPolicy{Strategy: routing.StrategyFirstResponder, Users: []routing.WeightedUser{{UserID: "3"}}}
	active := []store.CRMUser{crmUser("3", true), crmUser("4", true), crmUser("9", false)}
	cases := []struct {
		name    string
		policy  *routing.OwnerPolicy
		users   []store.CRMUser
		claimed string // an owner recorded before
		want    []routing.NewOwner
	}{
		{"no policy: the CRM's default owner", nil, active, "", []routing.NewOwner{{Reason: routing.OwnerNoPolicy}}},
		{"round robin by weight, the inactive never", rr, active, "", []routing.NewOwner{
			{UserID: "4", Reason: routing.OwnerRotated}, {UserID: "3", Reason: routing.OwnerRotated}, {UserID: "4", Reason: routing.OwnerRotated}}},
		{"round robin with nobody active", rr, []store.CRMUser{crmUser("3", false), crmUser("4", false)}, "", []routing.NewOwner{{Reason: routing.OwnerNobodyActive}}},
		{"round robin, returning customer keeps the owner", rr, active, "3", []routing.NewOwner{{UserID: "3", Reason: routing.OwnerRotated}}},
		{"round robin, returning customer of a switched-off owner", rr, active, "9", []routing.NewOwner{{UserID: "4", Reason: routing.OwnerRotated}}},
		{"first responder before any answer", fr, active, "", []routing.NewOwner{{Reason: routing.OwnerWaiting}}},
		{"first responder after a claim", fr, active, "3", []routing.NewOwner{{UserID: "3", Reason: routing.OwnerClaimed}}},
		{"first responder, the claimer switched off", fr, active, "9", []routing.NewOwner{{Reason: routing.OwnerWaiting}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newMemOwners(c.users...)
			b := binding(t, c.policy)
			var got []routing.NewOwner
			for i := range c.want {
				contact := "c" + string(rune('0'+i))
				if c.claimed != "" {
					st.owners[b.ID+"/"+contact] = c.claimed
				}
				o, err := routing.OwnerForNewRecord(ctx, st, b, contact)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, o)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v", got)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("customer %d: %+v, want %+v (all: %+v)", i, got[i], c.want[i], got)
				}
			}
			if c.claimed != "" && c.claimed != "9" && st.picks != 0 {
				t.Fatalf("the rotation advanced for a customer who has an owner")
			}
		})
	}
	// A policy that no longer decodes is an error, not "no policy": the
	// records would silently go to the installing user.
	b := &store.ChannelBinding{ID: "b1", OwnerPolicy: "{broken"}
	if _, err := routing.OwnerForNewRecord(ctx, newMemOwners(), b, "c"); err == nil {
		t.Fatal("a broken stored policy was taken as none")
	}
}

func TestClaimByAnswer(t *testing.T) {
	ctx := context.Background()
	fr := &routing.OwnerPolicy{Strategy: routing.StrategyFirstResponder, Users: []routing.WeightedUser{{UserID: "3"}, {UserID: "4"}, {UserID: "9"}}}
	anyone := &routing.OwnerPolicy{Strategy: routing.StrategyFirstResponder}
	rr := &routing.OwnerPolicy{Strategy: routing.StrategyRoundRobin, Users: []routing.WeightedUser{{UserID: "3", Weight: 1}}}
	users := []store.CRMUser{crmUser("1", true), crmUser("3", true), crmUser("4", true), crmUser("9", false)}
	type answer struct {
		user string
		want routing.Claim
	}
	cases := []struct {
		name    string
		policy  *routing.OwnerPolicy
		answers []answer
	}{
		{"first member wins, later ones do not", fr, []answer{{"3", routing.Claim{Owner: "3", Won: true}}, {"4", routing.Claim{Owner: "3"}}, {"3", routing.Claim{Owner: "3", Won: true}}}},
		{"a non-member changes nothing", fr, []answer{{"1", routing.Claim{}}, {"4", routing.Claim{Owner: "4", Won: true}}}},
		{"a switched-off member changes nothing", fr, []answer{{"9", routing.Claim{}}, {"3", routing.Claim{Owner: "3", Won: true}}}},
		{"an empty group: any active user", anyone, []answer{{"1", routing.Claim{Owner: "1", Won: true}}}},
		{"round robin: answers claim nothing", rr, []answer{{"3", routing.Claim{}}}},
		{"no policy: answers claim nothing", nil, []answer{{"3", routing.Claim{}}}},
		{"no user known (an API send)", fr, []answer{{"", routing.Claim{}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newMemOwners(users...)
			b := binding(t, c.policy)
			for i, a := range c.answers {
				got, err := routing.ClaimByAnswer(ctx, st, b, "c1", a.user)
				if err != nil || got != a.want {
					t.Fatalf("answer %d by %q: %+v %v, want %+v", i, a.user, got, err, a.want)
				}
			}
		})
	}
}

func TestStartNewRecord(t *testing.T) {
	for _, c := range []struct {
		onRepeat string
		closed   bool
		want     bool
	}{
		{routing.OnRepeatNew, true, true}, {routing.OnRepeatNew, false, false},
		{routing.OnRepeatLastClosed, true, false}, {routing.OnRepeatLastClosed, false, false},
	} {
		if got := routing.StartNewRecord(routing.BindingPolicy{OnRepeat: c.onRepeat}, c.closed); got != c.want {
			t.Errorf("%s, closed %v: %v", c.onRepeat, c.closed, got)
		}
	}
}

func TestValidateBinding(t *testing.T) {
	users := []store.CRMUser{crmUser("3", true), crmUser("9", false)}
	owner := &routing.OwnerPolicy{Strategy: routing.StrategyRoundRobin, Users: []routing.WeightedUser{{UserID: "3", Weight: 1}}}
	cases := []struct {
		name      string
		p         routing.BindingPolicy
		crm       bool
		users     []store.CRMUser
		code      string // "" = valid
		field     string
		inMessage string
	}{
		{"crm mode, everything", routing.BindingPolicy{Name: "Продажи", Owner: owner, OnRepeat: "new", Mirror: "daily"}, true, users, "", "", ""},
		{"openlines, a name", routing.BindingPolicy{Name: "Линия"}, false, users, "", "", ""},
		{"openlines, an owner", routing.BindingPolicy{Owner: owner}, false, users, routing.CodeFieldNotAllowed, "owner", "crm mode"},
		{"openlines, on_repeat", routing.BindingPolicy{OnRepeat: "new"}, false, users, routing.CodeFieldNotAllowed, "on_repeat", "crm mode"},
		{"openlines, mirror", routing.BindingPolicy{Mirror: "each"}, false, users, routing.CodeFieldNotAllowed, "mirror", "crm mode"},
		{"users never read", routing.BindingPolicy{Owner: owner}, true, nil, routing.CodeOwnerUserUnknown, "owner.users[0].user_id",
			"never read: load it with POST /api/v1/integrations/i1/refresh"},
		{"a switched-off user", routing.BindingPolicy{Owner: &routing.OwnerPolicy{Strategy: routing.StrategyFirstResponder, Users: []routing.WeightedUser{{UserID: "9"}}}},
			true, users, routing.CodeOwnerUserUnknown, "owner.users[0].user_id", "refresh the list with POST /api/v1/integrations/i1/refresh"},
		{"weight 0", routing.BindingPolicy{Owner: &routing.OwnerPolicy{Strategy: routing.StrategyRoundRobin, Users: []routing.WeightedUser{{UserID: "3"}}}},
			true, users, routing.CodeOwnerWeight, "owner.users[0].weight", "owner.users[0].weight: weight 0 is outside 1..100"},
		{"mirror", routing.BindingPolicy{Mirror: "weekly"}, true, users, routing.CodeMirrorMode, "mirror", `"weekly"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := routing.ValidateBinding(c.p, c.crm, "i1", c.users)
			if c.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			fe := fault.As(err)
			if fe == nil || fe.Kind != fault.Invalid || fe.Code != c.code || fe.Field != c.field || !strings.Contains(fe.Message, c.inMessage) {
				t.Fatalf("%#v, want %s at %s saying %q", err, c.code, c.field, c.inMessage)
			}
			var pe *routing.PolicyError
			if c.code != routing.CodeFieldNotAllowed && !errors.As(err, &pe) {
				t.Fatal("the PolicyError is not kept as the cause")
			}
		})
	}
	// The policy round-trips through the binding's columns.
	b := &store.ChannelBinding{}
	routing.BindingPolicy{Name: "Продажи", Owner: owner, OnRepeat: "new", Mirror: "hourly"}.Apply(b)
	p, err := routing.PolicyOf(b)
	if raw, _ := json.Marshal(p); err != nil || string(raw) != `{"name":"Продажи","owner":{"strategy":"round_robin","users":[{"user_id":"3","weight":1}]},"on_repeat":"new","mirror":"hourly"}` {
		t.Fatalf("%s %v", raw, err)
	}
}
