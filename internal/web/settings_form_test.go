package web

import (
	"bytes"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/crm"
)

// The settings form renders on its own, without the cabinet's chrome,
// posting under whatever Base the embedding page gives: a CRM
// widget page is to embed the same template.
func TestSettingsFormRendersAlone(t *testing.T) {
	f := &settingsForm{T: cabinetTexts["en"], Lang: "en", CSRF: "tok", Base: "/widget/x/settings/01ABC",
		ID: "01ABC", Type: "somecrm", State: "active", StateLabel: "active", AccessMode: "matrix", Visibility: "all", NotifySecs: "300",
		Users:    []formUser{{ID: "5", Name: "Ann", Active: true}},
		Channels: []formBinding{{ChannelID: "01CH", ChannelName: "Sales", Mode: "crm", Bound: true, Checked: true, CRMMode: true, OnRepeat: "last_closed", Mirror: "each"}},
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
	for _, want := range []string{`action="/widget/x/settings/01ABC/save"`, `formaction="/widget/x/settings/01ABC/refresh"`, `action="/widget/x/settings/01ABC/delete"`,
		`name="lvl:5:01CH"`, `<option value="read" selected>`, `name="csrf" value="tok"`, `id="notify" name="notify_after_seconds" inputmode="numeric" value="300" class="bad"`,
		`name="ch" value="01CH"`, `name="strategy:01CH"`, `name="on_repeat:01CH"`, `name="mirror:01CH"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
}

// Inside a CRM: the session instead of the CSRF token, the CRM's
// pipelines to choose the entry stage from, and for a user who is not
// the CRM's admin no buttons and every field disabled.
func TestSettingsFormInsideCRM(t *testing.T) {
	f := &settingsForm{T: cabinetTexts["ru"], Lang: "ru", Sess: "s.sig", Base: "/crmx/settings", ID: "01ABC", Type: "crmx",
		AccessMode: "open", Visibility: "all", NotifySecs: "300", CanBind: true,
		Pipelines: []crm.Pipeline{{ID: "7", Name: "Sales", Stages: []crm.Stage{{ID: "70", Name: "New"}, {ID: "71", Name: "Talks"}}}},
		Channels: []formBinding{{ChannelID: "01CH", ChannelName: "WA", Mode: "crm", CRMMode: true, Category: "7", Stage: "71", StageKnown: true},
			{ChannelID: "02CH", ChannelName: "IG", Mode: "crm", Bound: true, Checked: true, CRMMode: true, Category: "9", Stage: "90"}}}
	render := func() string {
		var buf bytes.Buffer
		if err := cabinetPages.ExecuteTemplate(&buf, "integration_settings", f); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	out := render()
	for _, want := range []string{`name="sess" value="s.sig"`, `<optgroup label="Sales">`, `<option value="7/71" selected>`,
		`<option value="9/90" selected>9 / 90</option>`, `id="bind-01CH" name="bind:01CH" >`, `id="bind-02CH" name="bind:02CH" checked>`,
		`id="save"`, `src="/assets/settings.js"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
	if strings.Contains(out, `name="csrf"`) {
		t.Error("a CRM's page carries a CSRF field it has no token for")
	}
	f.ReadOnly, f.ReadOnlyReason = true, "admins only"
	out = render()
	if !strings.Contains(out, `<fieldset class="whole" disabled>`) || strings.Contains(out, `id="save"`) || strings.Contains(out, `id="delete"`) || !strings.Contains(out, "admins only") {
		t.Errorf("read-only form:\n%s", out)
	}
}
