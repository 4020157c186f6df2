package bitrix24

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// splitCmd parses a batch command string into its method and decoded params.
func splitCmd(t *testing.T, s string) (string, map[string]any) {
	t.Helper()
	method, query, _ := strings.Cut(s, "?")
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return method, DecodeForm(v)
}

type batchBody struct {
	Halt int               `json:"halt"`
	Cmd  map[string]string `json:"cmd"`
}

func fixtureBatchCommands() []BatchCommand {
	return []BatchCommand{
		{Name: "find", Method: "crm.duplicate.findbycomm", Params: map[string]any{
			"entity_type": "CONTACT", "type": "PHONE", "values": []string{"+79161234567"}}},
		{Name: "deals", Method: "crm.deal.list", Params: map[string]any{
			"filter": map[string]any{"CONTACT_ID": "$result[find][CONTACT][0]", "CLOSED": "N"},
			"order":  map[string]any{"ID": "DESC"},
			"select": []string{"ID", "STAGE_ID", "CATEGORY_ID"}}},
		{Name: "me", Method: "user.current"},
	}
}

func TestBatchEncodingMatchesFixture(t *testing.T) {
	var got batchBody
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
		if c.Method != "batch" {
			t.Errorf("method %s", c.Method)
		}
		if err := json.Unmarshal(c.Body, &got); err != nil {
			t.Error(err)
		}
		writeJSON(w, 200, string(fixture(t, "batch-response.json")))
	})
	if _, err := env.client.Batch(context.Background(), testIntegration, fixtureBatchCommands(), false); err != nil {
		t.Fatal(err)
	}
	var want batchBody
	if err := json.Unmarshal(fixture(t, "batch-request.json"), &want); err != nil {
		t.Fatal(err)
	}
	if got.Halt != want.Halt || len(got.Cmd) != len(want.Cmd) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for name, w := range want.Cmd {
		gm, gp := splitCmd(t, got.Cmd[name])
		wm, wp := splitCmd(t, w)
		if gm != wm || !reflect.DeepEqual(gp, wp) {
			t.Errorf("%s: got %q (%v), want %q (%v)", name, got.Cmd[name], gp, w, wp)
		}
	}
	// Encoded once inside the JSON string, with the reference verbatim.
	if !strings.Contains(got.Cmd["deals"], "filter[CONTACT_ID]=$result[find][CONTACT][0]") ||
		!strings.Contains(got.Cmd["find"], "values[0]=%2B79161234567") || got.Cmd["me"] != "user.current" {
		t.Errorf("cmd = %q", got.Cmd)
	}
}

func TestBatchDecodesResponses(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
			writeJSON(w, 200, string(fixture(t, "batch-response.json")))
		})
		res, err := env.client.Batch(context.Background(), testIntegration, fixtureBatchCommands(), false)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Results) != 3 || len(res.Errors) != 0 || !reflect.DeepEqual(res.Totals, map[string]int{"deals": 1}) || len(res.Next) != 0 {
			t.Errorf("res = %+v", res)
		}
		var found struct{ CONTACT []int }
		if err := res.Decode("find", &found); err != nil || !reflect.DeepEqual(found.CONTACT, []int{275}) {
			t.Errorf("find = %+v, %v", found, err)
		}
		var deals []struct{ ID, STAGE_ID string }
		if err := res.Decode("deals", &deals); err != nil || len(deals) != 1 || deals[0].STAGE_ID != "C1:PREPARATION" {
			t.Errorf("deals = %+v, %v", deals, err)
		}
		if err := res.Decode("nope", &deals); err == nil {
			t.Error("Decode of an unknown command")
		}
	})
	t.Run("with error", func(t *testing.T) {
		env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
			writeJSON(w, 200, string(fixture(t, "batch-response-with-error.json")))
		})
		res, err := env.client.Batch(context.Background(), testIntegration, fixtureBatchCommands(), false)
		if err != nil {
			t.Fatal(err)
		}
		if ae := res.Errors["deals"]; ae == nil || ae.Code != "insufficient_scope" {
			t.Errorf("errors = %+v", res.Errors)
		}
		if _, ok := res.Results["me"]; !ok || len(res.Results) != 1 || len(res.Totals) != 0 || len(res.Next) != 0 {
			t.Errorf("res = %+v", res)
		}
		var deals []any
		err = res.Decode("deals", &deals)
		var ae *APIError
		if !errors.As(err, &ae) || !errors.Is(err, &APIError{Code: "INSUFFICIENT_SCOPE"}) {
			t.Errorf("Decode(deals) = %v", err)
		}
	})
}

// batchEcho answers each batch with one result per command, failing the
// commands whose names are in fail.
func batchEcho(t *testing.T, sizes *[]int, fail map[string]bool) func(w http.ResponseWriter, c portalCall) {
	return func(w http.ResponseWriter, c portalCall) {
		var b batchBody
		if err := json.Unmarshal(c.Body, &b); err != nil {
			t.Error(err)
		}
		*sizes = append(*sizes, len(b.Cmd))
		results, errs := map[string]any{}, map[string]any{}
		for name := range b.Cmd {
			if fail[name] {
				errs[name] = map[string]string{"error": "ERROR_ARGUMENT", "error_description": "bad"}
				continue
			}
			results[name] = name
		}
		var errsJSON any = errs
		if len(errs) == 0 {
			errsJSON = []any{}
		}
		body, _ := json.Marshal(map[string]any{"result": map[string]any{"result": results, "result_error": errsJSON,
			"result_total": []any{}, "result_next": map[string]int{"c0": 50}}})
		writeJSON(w, 200, string(body))
	}
}

func manyCommands(n int) []BatchCommand {
	cmds := make([]BatchCommand, n)
	for i := range cmds {
		cmds[i] = BatchCommand{Name: fmt.Sprintf("c%d", i), Method: "crm.contact.get", Params: map[string]any{"id": i}}
	}
	return cmds
}

func TestBatchSplitsAt50(t *testing.T) {
	var sizes []int
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	env.portal.handle = batchEcho(t, &sizes, nil)
	res, err := env.client.Batch(context.Background(), testIntegration, manyCommands(120), false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sizes, []int{50, 50, 20}) {
		t.Errorf("batch sizes = %v", sizes)
	}
	if len(res.Results) != 120 || string(res.Results["c119"]) != `"c119"` || res.Next["c0"] != 50 {
		t.Errorf("%d results, c119=%s next=%v", len(res.Results), res.Results["c119"], res.Next)
	}
}

func TestBatchHaltStopsLaterCalls(t *testing.T) {
	var sizes []int
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	env.portal.handle = batchEcho(t, &sizes, map[string]bool{"c10": true})
	res, err := env.client.Batch(context.Background(), testIntegration, manyCommands(120), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 1 || res.Errors["c10"] == nil || res.Errors["c10"].Code != "ERROR_ARGUMENT" {
		t.Errorf("sizes=%v errors=%v", sizes, res.Errors)
	}
	// Without halt every chunk is sent.
	sizes = nil
	if _, err := env.client.Batch(context.Background(), testIntegration, manyCommands(120), false); err != nil || len(sizes) != 3 {
		t.Errorf("no halt: sizes=%v err=%v", sizes, err)
	}
}

func TestBatchRejectsBadCommands(t *testing.T) {
	crossing := manyCommands(60)
	crossing[55].Params = map[string]any{"id": "$result[c1]"}
	forward := manyCommands(3)
	forward[0].Params = map[string]any{"id": "$result[c2][ID]"}
	tests := map[string][]BatchCommand{
		"cross-chunk reference": crossing,
		"forward reference":     forward,
		"duplicate name":        {{Name: "a", Method: "user.current"}, {Name: "a", Method: "user.current"}},
		"empty name":            {{Name: "", Method: "user.current"}},
		"name with bracket":     {{Name: "a[0]", Method: "user.current"}},
		"nested batch":          {{Name: "a", Method: "batch"}},
		"bad method":            {{Name: "a", Method: "user.current?x=1"}},
	}
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", nil)
	for name, cmds := range tests {
		if _, err := env.client.Batch(context.Background(), testIntegration, cmds, false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := len(env.portal.Calls()); n != 0 {
		t.Errorf("%d portal calls", n)
	}
	res, err := env.client.Batch(context.Background(), testIntegration, nil, false)
	if err != nil || len(res.Results) != 0 || len(env.portal.Calls()) != 0 {
		t.Errorf("empty batch: %+v, %v", res, err)
	}
}

func TestNamedRaw(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{``, nil},
		{`null`, nil},
		{`[]`, map[string]string{}},
		{`{}`, map[string]string{}},
		{`{"a":1}`, map[string]string{"a": "1"}},
		{`["x","y"]`, map[string]string{"0": `"x"`, "1": `"y"`}},
	}
	for _, tt := range tests {
		got, err := namedRaw(json.RawMessage(tt.in))
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		gs := map[string]string{}
		for k, v := range got {
			gs[k] = string(v)
		}
		if tt.want == nil && got != nil || tt.want != nil && !reflect.DeepEqual(gs, tt.want) {
			t.Errorf("%q: %v", tt.in, gs)
		}
	}
	if _, err := namedRaw(json.RawMessage(`"x"`)); err == nil {
		t.Error("string accepted")
	}
}

func TestBatchRegisterQuirk(t *testing.T) {
	env := newTestEnv(t, "valid-access", "rt-0", "valid-access", func(w http.ResponseWriter, c portalCall) {
		writeJSON(w, 200, `{"result":{"result":{"reg":{"result":false,"error":"NO_PLACEMENT_HANDLER","error_description":"x"},`+
			`"ok":{"result":true},"other":{"result":false}},"result_error":[],"result_total":[],"result_next":[]}}`)
	})
	res, err := env.client.Batch(context.Background(), testIntegration, []BatchCommand{
		{Name: "reg", Method: "imconnector.register"},
		{Name: "ok", Method: "imconnector.register"},
		{Name: "other", Method: "crm.some.check"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if ae := res.Errors["reg"]; ae == nil || ae.Code != "NO_PLACEMENT_HANDLER" || ae.HTTPStatus != 200 {
		t.Errorf("errors = %+v", res.Errors)
	}
	if _, ok := res.Results["ok"]; !ok || len(res.Errors) != 1 {
		t.Errorf("res = %+v", res)
	}
	if _, ok := res.Results["other"]; !ok {
		t.Error("result=false of another method taken as an error")
	}
}
