package routing

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/store"
)

func TestBindingPolicyValidate(t *testing.T) {
	known := KnownActive([]store.CRMUser{{UserID: "1", Active: true}, {UserID: "2", Active: false}})
	cases := []struct {
		name  string
		p     BindingPolicy
		field string // "" = valid
		code  string
	}{
		{"empty is the defaults", BindingPolicy{}, "", ""},
		{"all set", BindingPolicy{Name: "Продажи", Mirror: MirrorHourly, OnRepeat: OnRepeatNew,
			Owner: &OwnerPolicy{Strategy: StrategyRoundRobin, Users: []WeightedUser{{UserID: "1", Weight: 3}}}}, "", ""},
		{"unknown mirror", BindingPolicy{Mirror: "weekly"}, "mirror", CodeMirrorMode},
		{"unknown on_repeat", BindingPolicy{OnRepeat: "reopen"}, "on_repeat", CodeOnRepeat},
		{"name too long", BindingPolicy{Name: strings.Repeat("я", MaxBindingName+1)}, "name", CodeBindingName},
		{"name not text", BindingPolicy{Name: "\xff"}, "name", CodeBindingName},
		{"deactivated owner", BindingPolicy{Owner: &OwnerPolicy{Strategy: StrategyFirstResponder, Users: []WeightedUser{{UserID: "2"}}}},
			"owner.users[0].user_id", CodeOwnerUserUnknown},
		{"weight above range", BindingPolicy{Owner: &OwnerPolicy{Strategy: StrategyRoundRobin, Users: []WeightedUser{{UserID: "1", Weight: 101}}}},
			"owner.users[0].weight", CodeOwnerWeight},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Validate(known)
			if c.field == "" {
				if err != nil {
					t.Fatalf("valid policy refused: %v", err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a PolicyError on %s", err, c.field)
			}
			if pe.Field != c.field || pe.Code != c.code {
				t.Fatalf("got %s/%s, want %s/%s", pe.Field, pe.Code, c.field, c.code)
			}
		})
	}
}

func TestBindingPolicyRoundTrip(t *testing.T) {
	p := BindingPolicy{Name: "Казань", Mirror: MirrorDaily, OnRepeat: OnRepeatNew,
		Owner: &OwnerPolicy{Strategy: StrategyRoundRobin, Users: []WeightedUser{{UserID: "3", Weight: 2}, {UserID: "4", Weight: 1}}}}
	var b store.ChannelBinding
	p.Apply(&b)
	got, err := PolicyOf(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != p.Name || got.Mirror != p.Mirror || got.OnRepeat != p.OnRepeat || got.Owner == nil ||
		len(got.Owner.Users) != 2 || got.Owner.Users[0].Weight != 2 || got.Owner.Strategy != StrategyRoundRobin {
		t.Fatalf("round trip changed the policy: %+v", got)
	}

	// Defaults fill in, and an owner-less policy clears a stored owner.
	BindingPolicy{}.Apply(&b)
	got, err = PolicyOf(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mirror != MirrorEach || got.OnRepeat != OnRepeatLastClosed || got.Owner != nil {
		t.Fatalf("defaults: %+v", got)
	}

	// A stored owner policy that does not decode is an error, never "none".
	b.OwnerPolicy = "{"
	if _, err := PolicyOf(&b); err == nil {
		t.Fatal("a broken stored owner policy read as none")
	}
}

func TestSettingsOfDefaultsAndBrokenJSON(t *testing.T) {
	in := &store.Integration{ID: "i"}
	s, err := SettingsOf(in)
	if err != nil || s.Visibility != VisibilityAll || s.NotifyAfterSeconds != DefaultNotifyAfterSeconds {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	raw := `{"visibility":"own","chat_admin_user_id":"7","notify_after_seconds":60}`
	in.Settings = &raw
	s, err = SettingsOf(in)
	if err != nil || s.Visibility != VisibilityOwn || s.ChatAdminUserID != "7" || s.NotifyAfterSeconds != 60 {
		t.Fatalf("stored: %+v %v", s, err)
	}
	bad := `{"visibility":`
	in.Settings = &bad
	if _, err := SettingsOf(in); err == nil {
		t.Fatal("broken settings read as defaults")
	}
}
