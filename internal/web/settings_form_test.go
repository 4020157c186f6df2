package web

import (
	"bytes"
	"strings"
	"testing"
)

// The settings form renders on its own, without the cabinet's chrome,
// posting under whatever Base the embedding page gives: a CRM
// widget page is to embed the same template.
func TestSettingsFormRendersAlone(t *testing.T) {
	f := &settingsForm{T: cabinetTexts["en"], Lang: "en", CSRF: "tok", Base: "/widget/x/settings/01ABC",
		ID: "01ABC", Type: "somecrm", State: "active", StateLabel: "active", AccessMode: "matrix", Visibility: "all", NotifySecs: "300",
		Users:    []formUser{{ID: "5", Name: "Ann", Active: true}},
		Channels: []formBinding{{ChannelID: "01CH", ChannelName: "Sales", Mode: "crm", CRMMode: true, OnRepeat: "last_closed", Mirror: "each"}},
		Matrix:   []formAccessRow{{UserID: "5", Name: "Ann", Active: true, Cells: []formCell{{ChannelID: "01CH", Level: "read"}}}},
		Refused:  &problem{Text: "Alert: a whole number", Field: "notify_after_seconds", Code: "notify_after_seconds_out_of_range"}}
	var buf bytes.Buffer
	if err := cabinetPages.ExecuteTemplate(&buf, "integration_settings", f); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "<html") || strings.Contains(out, "<header") || strings.Contains(out, "sign-out") {
		t.Error("the form carries the cabinet's chrome")
	}
	for _, want := range []string{`action="/widget/x/settings/01ABC/access"`, `action="/widget/x/settings/01ABC/channels/01CH/policy"`,
		`name="lvl:5:01CH"`, `<option value="read" selected>`, `name="csrf" value="tok"`, `id="notify" name="notify_after_seconds" inputmode="numeric" value="300" class="bad"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
}
