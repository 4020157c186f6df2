package amocrm

import (
	"net/url"
	"testing"
)

// TestParseDPCall: a run reads the same as a form (what amoCRM posts) and
// as JSON (the documentation's example, numbers as numbers or strings);
// the key leaves the settings; a run without an account is refused.
func TestParseDPCall(t *testing.T) {
	form := url.Values{"event[type]": {"14"}, "event[data][id]": {"25100001"}, "event[data][element_type]": {"2"},
		"event[data][status_id]": {"61000003"}, "event[data][pipeline_id]": {"7000001"}, "event[time]": {"1767300000"},
		"event[data][direction_of_movement]": {"went_to_trigger"}, "account_id": {"30123456"}, "subdomain": {"example"},
		"action[settings][widget][settings][text]": {"Привет"}, "action[settings][widget][settings][key]": {"k1"}}
	js := `{"event":{"type":14,"type_code":"lead_status_changed","data":{"id":25100001,"element_type":2,"status_id":"61000003",
		"pipeline_id":7000001,"direction_of_movement":"went_to_trigger"},"time":1767300000},
		"action":{"settings":{"widget":{"settings":{"text":"Привет","key":"k1"}}}},"subdomain":"example","account_id":"30123456"}`
	a, err := parseDPCall("application/x-www-form-urlencoded", []byte(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseDPCall("application/json", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*dpCall{a, b} {
		if c.AccountID != "30123456" || c.LeadID != 25100001 || c.StatusID != 61000003 || c.PipelineID != 7000001 || c.Type != 14 ||
			c.ElementType != 2 || c.Time != 1767300000 || c.Key != "k1" || c.Settings["text"] != "Привет" || len(c.Settings) != 1 {
			t.Fatalf("parsed %+v", c)
		}
	}
	if a.dedupKey() != b.dedupKey() {
		t.Fatal("the same run has two keys")
	}
	b.Settings["text"] = "Другое"
	if a.dedupKey() == b.dedupKey() {
		t.Fatal("two actions of one stage share a key")
	}
	for _, bad := range []string{`{"event":{}}`, `account_id=x`, `{"account_id":1,"event":{"data":{"id":"abc"}}}`} {
		if _, err := parseDPCall("", []byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
