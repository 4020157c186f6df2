package graph

import (
	"encoding/json"
	"testing"
)

func TestFlexTypes(t *testing.T) {
	var v struct {
		S FlexString `json:"s"`
		N FlexInt    `json:"n"`
		B FlexBool   `json:"b"`
	}
	ok := []struct {
		in string
		s  FlexString
		n  FlexInt
		b  FlexBool
	}{
		{`{"s":"abc","n":"1767600000","b":true}`, "abc", 1767600000, true},
		{`{"s":109283746501928,"n":1767600000123,"b":"true"}`, "109283746501928", 1767600000123, true},
		{`{"s":null,"n":null,"b":null}`, "", 0, false},
		{`{"n":"","b":0}`, "", 0, false},
		{`{"n":1.7676e9,"b":"1"}`, "", 1767600000, true},
		{`{"n":" 42 "}`, "", 42, false},
	}
	for _, tt := range ok {
		v.S, v.N, v.B = "", 0, false
		if err := json.Unmarshal([]byte(tt.in), &v); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if v.S != tt.s || v.N != tt.n || v.B != tt.b {
			t.Errorf("%s: got %q %d %v", tt.in, v.S, v.N, v.B)
		}
	}
	for _, in := range []string{`{"s":{}}`, `{"s":[1]}`, `{"n":"x"}`, `{"n":1.5}`, `{"n":1e300}`, `{"b":"yes"}`, `{"n":{}}`} {
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestDecodeAny(t *testing.T) {
	got := DecodeAny(json.RawMessage(`{"id":120210987654321098123}`))
	m, ok := got.(map[string]any)
	if !ok || m["id"] != json.Number("120210987654321098123") {
		t.Errorf("got %#v", got)
	}
	if DecodeAny(json.RawMessage(`{`)) != nil || DecodeAny(nil) != nil {
		t.Error("bad input should give nil")
	}
}
