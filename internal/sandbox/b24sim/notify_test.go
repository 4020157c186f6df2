package b24sim

import (
	"net/url"
	"testing"
)

// Personal notifications as the gateway sends them, one per user inside a
// batch: each is recorded for the portal with its user, text and tag, and
// the commands the real method refuses (no user, no text) fail on their
// own and record nothing.
func TestPersonalNotificationsInBatch(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	cmd := func(v url.Values) string { return "im.notify.personal.add?" + v.Encode() }
	msg := "Новое сообщение от клиента Анна\n[URL=https://x/crm/deal/details/1/]Открыть сделку[/URL]"
	r := env.ok(t, "batch", map[string]any{"halt": 0, "cmd": map[string]any{
		"a": cmd(url.Values{"USER_ID": {"5"}, "MESSAGE": {msg}, "TAG": {"SWITCHBOARD|d1|new"}}),
		"b": cmd(url.Values{"USER_ID": {"7"}, "MESSAGE": {msg}, "TAG": {"SWITCHBOARD|d1|new"}}),
		"c": cmd(url.Values{"MESSAGE": {msg}}),
		"d": cmd(url.Values{"USER_ID": {"5"}, "MESSAGE": {""}}),
	}})
	if _, ok := dig(r.body, "result", "result", "a").(float64); !ok {
		t.Fatalf("batch: %s", r.raw)
	}
	if dig(r.body, "result", "result_error", "c", "error") != "USER_ID_EMPTY" || dig(r.body, "result", "result_error", "d", "error") != "MESSAGE_EMPTY" {
		t.Fatalf("refusals: %s", r.raw)
	}
	n := env.portal.Notifications()
	if len(n) != 2 || n[0].Type != "personal" || n[0].UserID != 5 || n[1].UserID != 7 || n[0].Message != msg || n[1].Tag != "SWITCHBOARD|d1|new" || n[0].Replaced {
		t.Fatalf("Notifications() = %+v", n)
	}
	// The same tag to the same user replaces the earlier notice.
	env.ok(t, "im.notify.personal.add", map[string]any{"USER_ID": 5, "MESSAGE": "again", "TAG": "SWITCHBOARD|d1|new"})
	if n := env.portal.Notifications(); len(n) != 3 || !n[0].Replaced || n[1].Replaced || n[2].Message != "again" {
		t.Fatalf("after a repeat: %+v", n)
	}
}
