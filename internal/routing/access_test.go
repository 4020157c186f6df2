package routing

import (
	"errors"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/internal/store"
)

var testCtx = AccessContext{
	Users: []store.CRMUser{{UserID: "1", Active: true}, {UserID: "2", Active: true}, {UserID: "9", Active: false}},
	Bound: []string{"a", "b"},
}

func codeOf(err error) string {
	var pe *PolicyError
	if errors.As(err, &pe) {
		return pe.Code + "@" + pe.Field
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestValidateAccess(t *testing.T) {
	cases := []struct {
		name string
		in   []UserAccess
		want []store.ChannelAccess
		code string
	}{
		{"empty", nil, nil, ""},
		{"single send becomes default", []UserAccess{{UserID: "1", Channels: map[string]string{"a": "send", "b": "read"}}},
			[]store.ChannelAccess{{UserID: "1", ChannelID: "a", Level: "send", IsDefault: true}, {UserID: "1", ChannelID: "b", Level: "read"}}, ""},
		{"two sends no default", []UserAccess{{UserID: "1", Channels: map[string]string{"a": "send", "b": "send"}}},
			[]store.ChannelAccess{{UserID: "1", ChannelID: "a", Level: "send"}, {UserID: "1", ChannelID: "b", Level: "send"}}, ""},
		{"named default", []UserAccess{{UserID: "1", Channels: map[string]string{"a": "send", "b": "send"}, DefaultChannelID: "b"}},
			[]store.ChannelAccess{{UserID: "1", ChannelID: "a", Level: "send"}, {UserID: "1", ChannelID: "b", Level: "send", IsDefault: true}}, ""},
		{"none dropped", []UserAccess{{UserID: "2", Channels: map[string]string{"a": "none", "b": "read"}}},
			[]store.ChannelAccess{{UserID: "2", ChannelID: "b", Level: "read"}}, ""},
		{"inactive user may keep rows", []UserAccess{{UserID: "9", Channels: map[string]string{"a": "read"}}},
			[]store.ChannelAccess{{UserID: "9", ChannelID: "a", Level: "read"}}, ""},
		{"unknown user", []UserAccess{{UserID: "1"}, {UserID: "404"}}, nil, CodeAccessUser + "@access[1].user_id"},
		{"duplicate user", []UserAccess{{UserID: "1"}, {UserID: "1"}}, nil, CodeAccessDuplicate + "@access[1].user_id"},
		{"unknown level", []UserAccess{{UserID: "1", Channels: map[string]string{"a": "write"}}}, nil, CodeAccessLevel + `@access[0].channels["a"]`},
		{"channel not bound", []UserAccess{{UserID: "1", Channels: map[string]string{"zz": "read"}}}, nil, CodeChannelNotBound + `@access[0].channels["zz"]`},
		{"default on read", []UserAccess{{UserID: "1", Channels: map[string]string{"a": "read"}, DefaultChannelID: "a"}}, nil, CodeDefaultNotSend + "@access[0].default_channel_id"},
		{"default on absent", []UserAccess{{UserID: "1", Channels: map[string]string{"a": "send"}, DefaultChannelID: "b"}}, nil, CodeDefaultNotSend + "@access[0].default_channel_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ValidateAccess(c.in, testCtx)
			if codeOf(err) != c.code {
				t.Fatalf("error %v, want %s", err, c.code)
			}
			if c.code == "" && !reflect.DeepEqual(got, c.want) {
				t.Errorf("rows\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestBulkAccess(t *testing.T) {
	cur := []store.ChannelAccess{
		{UserID: "1", ChannelID: "a", Level: "send", IsDefault: true},
		{UserID: "1", ChannelID: "b", Level: "send"},
		{UserID: "9", ChannelID: "a", Level: "read"},
	}
	cases := []struct {
		name string
		op   BulkAccess
		want []store.ChannelAccess
		code string
	}{
		{"add all read keeps send, skips inactive", BulkAccess{Op: BulkAddAll, Level: "read"}, []store.ChannelAccess{
			{UserID: "1", ChannelID: "a", Level: "send", IsDefault: true}, {UserID: "1", ChannelID: "b", Level: "send"},
			{UserID: "2", ChannelID: "a", Level: "read"}, {UserID: "2", ChannelID: "b", Level: "read"},
			{UserID: "9", ChannelID: "a", Level: "read"}}, ""},
		{"add all send on one channel gives single default", BulkAccess{Op: BulkAddAll, ChannelID: "b", Level: "send"}, []store.ChannelAccess{
			{UserID: "1", ChannelID: "a", Level: "send", IsDefault: true}, {UserID: "1", ChannelID: "b", Level: "send"},
			{UserID: "2", ChannelID: "b", Level: "send", IsDefault: true},
			{UserID: "9", ChannelID: "a", Level: "read"}}, ""},
		{"remove one channel moves default to the only send left", BulkAccess{Op: BulkRemoveAll, ChannelID: "a"}, []store.ChannelAccess{
			{UserID: "1", ChannelID: "b", Level: "send", IsDefault: true}}, ""},
		{"remove all", BulkAccess{Op: BulkRemoveAll}, nil, ""},
		{"bad op", BulkAccess{Op: "drop"}, nil, CodeBulkOp + "@op"},
		{"add without level", BulkAccess{Op: BulkAddAll}, nil, CodeBulkLevel + "@level"},
		{"add level none", BulkAccess{Op: BulkAddAll, Level: "none"}, nil, CodeBulkLevel + "@level"},
		{"remove with level", BulkAccess{Op: BulkRemoveAll, Level: "read"}, nil, CodeBulkLevel + "@level"},
		{"channel not bound", BulkAccess{Op: BulkAddAll, ChannelID: "zz", Level: "read"}, nil, CodeChannelNotBound + "@channel_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.op.Apply(cur, testCtx)
			if codeOf(err) != c.code {
				t.Fatalf("error %v, want %s", err, c.code)
			}
			if c.code == "" && !reflect.DeepEqual(got, c.want) {
				t.Errorf("rows\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestSettingsValidate(t *testing.T) {
	known := func(id string) bool { return id == "1" }
	ok := IntegrationSettings{Visibility: VisibilityOwn, ChatAdminUserID: "1", NotifyAfterSeconds: 30, AccessMode: AccessModeMatrix}
	cases := []struct {
		name string
		edit func(*IntegrationSettings)
		code string
	}{
		{"ok", func(*IntegrationSettings) {}, ""},
		{"all without admin", func(s *IntegrationSettings) { s.Visibility, s.ChatAdminUserID = VisibilityAll, "" }, ""},
		{"max notify", func(s *IntegrationSettings) { s.NotifyAfterSeconds = MaxNotifyAfterSeconds }, ""},
		{"bad visibility", func(s *IntegrationSettings) { s.Visibility = "mine" }, CodeVisibility + "@visibility"},
		{"unknown chat admin", func(s *IntegrationSettings) { s.ChatAdminUserID = "2" }, CodeChatAdmin + "@chat_admin_user_id"},
		{"notify too short", func(s *IntegrationSettings) { s.NotifyAfterSeconds = 29 }, CodeNotifyAfter + "@notify_after_seconds"},
		{"notify too long", func(s *IntegrationSettings) { s.NotifyAfterSeconds = MaxNotifyAfterSeconds + 1 }, CodeNotifyAfter + "@notify_after_seconds"},
		{"bad access mode", func(s *IntegrationSettings) { s.AccessMode = "closed" }, CodeAccessMode + "@access_mode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.edit(&s)
			if got := codeOf(s.Validate(known)); got != c.code {
				t.Errorf("got %q, want %q", got, c.code)
			}
		})
	}
}

func TestSettingsOfDefaultsAndRoundTrip(t *testing.T) {
	s, err := SettingsOf(&store.Integration{})
	if err != nil || s != (IntegrationSettings{Visibility: VisibilityAll, NotifyAfterSeconds: DefaultNotifyAfterSeconds, AccessMode: AccessModeOpen}) {
		t.Fatalf("defaults %+v %v", s, err)
	}
	want := IntegrationSettings{Visibility: VisibilityOwn, ChatAdminUserID: "7", NotifyAfterSeconds: 600, AccessMode: AccessModeMatrix}
	raw := want.Encode()
	got, err := SettingsOf(&store.Integration{Settings: &raw})
	if err != nil || got != want {
		t.Fatalf("round trip %+v %v", got, err)
	}
	bad := "{"
	if _, err := SettingsOf(&store.Integration{Settings: &bad}); err == nil {
		t.Error("undecodable settings read as defaults")
	}
}

func TestGate(t *testing.T) {
	matrix := []store.ChannelAccess{
		{UserID: "1", ChannelID: "a", Level: "send"},
		{UserID: "1", ChannelID: "b", Level: "read"},
		{UserID: "2", ChannelID: "a", Level: "read"},
	}
	all := IntegrationSettings{Visibility: VisibilityAll, AccessMode: AccessModeMatrix}
	own := IntegrationSettings{Visibility: VisibilityOwn, ChatAdminUserID: "2", AccessMode: AccessModeMatrix}
	cases := []struct {
		name        string
		s           IntegrationSettings
		matrix      []store.ChannelAccess
		user        string
		admin       bool
		ch, owner   string
		sees, sends bool
	}{
		{"send", all, matrix, "1", false, "a", "", true, true},
		{"read only", all, matrix, "1", false, "b", "", true, false},
		{"no row is none", all, matrix, "2", false, "b", "", false, false},
		{"unknown user none", all, matrix, "3", false, "a", "", false, false},
		{"open: no rows, never configured", IntegrationSettings{Visibility: VisibilityAll, AccessMode: AccessModeOpen}, nil, "3", false, "a", "", true, true},
		{"matrix mode with no rows is none", all, nil, "3", false, "a", "", false, false},
		{"rows apply even if mode says open", IntegrationSettings{Visibility: VisibilityAll, AccessMode: AccessModeOpen}, matrix, "3", false, "a", "", false, false},
		{"own: other's dialog hidden", own, matrix, "1", false, "a", "2", false, false},
		{"own: own dialog", own, matrix, "1", false, "a", "1", true, true},
		{"own: unassigned", own, matrix, "1", false, "a", "", true, true},
		{"own: chat admin sees all", own, matrix, "2", false, "a", "1", true, false},
		{"portal admin passes", own, matrix, "5", true, "b", "1", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewGate(c.s, c.matrix, c.user, c.admin)
			if g.Sees(c.ch, c.owner) != c.sees || g.Sends(c.ch, c.owner) != c.sends {
				t.Errorf("sees %v sends %v, want %v %v", g.Sees(c.ch, c.owner), g.Sends(c.ch, c.owner), c.sees, c.sends)
			}
		})
	}
}
