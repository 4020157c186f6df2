package strictjson

import (
	"testing"

	"github.com/switchboard/switchboard/internal/fault"
)

func TestDecodeRefusals(t *testing.T) {
	type req struct {
		Name string `json:"name"`
		On   *bool  `json:"on"`
	}
	for _, tc := range []struct{ body, want string }{
		{``, "the body is empty: "},
		{`{"name":`, "the JSON body ends too early: "},
		{`name=x`, "the body is not JSON (at byte 2): "},
		{`[]`, "the body must be a JSON object: "},
		{`{"name":1}`, `field "name" must be a string`},
		{`{"on":"yes"}`, `field "on" must be true or false`},
		{`{"nope":1}`, `unknown field "nope"`},
		{`{} {}`, "request body: unexpected data after the JSON object"},
	} {
		var v req
		fe := fault.As(Decode([]byte(tc.body), &v))
		if fe == nil || fe.Kind != fault.Malformed || fe.Code != Code || len(fe.Message) < len(tc.want) || fe.Message[:len(tc.want)] != tc.want {
			t.Errorf("Decode(%q) = %v, want a malformed %s starting %q", tc.body, fe, Code, tc.want)
		}
	}
	var v req
	if err := Decode([]byte(`{"name":"Sales"}`), &v); err != nil || v.Name != "Sales" {
		t.Fatalf("Decode of a good body = %v, %+v", err, v)
	}
}
