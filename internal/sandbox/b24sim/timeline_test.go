package b24sim

import (
	"net/http"
	"net/url"
	"testing"
)

// TestTimelineCommentsInBatchAndList: comments added inside batch land on
// their record; crm.timeline.comment.list filters by record, newest first
// on request; a fail-after call applies its work and still answers the
// error; the REST counter counts a batch as one call.
func TestTimelineCommentsInBatchAndList(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	d1 := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "one"})
	d2 := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "two"})
	add := func(deal int, text string) string {
		return "crm.timeline.comment.add?" + url.Values{"fields[ENTITY_ID]": {itoa(deal)}, "fields[ENTITY_TYPE]": {"deal"}, "fields[COMMENT]": {text}}.Encode()
	}
	calls := env.sim.RESTCalls(testMemberID)
	r := env.ok(t, "batch", map[string]any{"halt": 0, "cmd": map[string]any{"a": add(d1, "первый #sb-1"), "b": add(d2, "второй"), "c": add(d1, "третий")}})
	if dig(r.body, "result", "result", "a") == nil || dig(r.body, "result", "result", "c") == nil {
		t.Fatalf("batch: %s", r.raw)
	}
	if n := env.sim.RESTCalls(testMemberID) - calls; n != 1 {
		t.Errorf("a batch counted as %d calls", n)
	}
	r = env.ok(t, "crm.timeline.comment.list", map[string]any{"filter": map[string]any{"ENTITY_ID": d1, "ENTITY_TYPE": "deal"}, "order": map[string]any{"ID": "DESC"}})
	if dig(r.body, "result", 0, "COMMENT") != "третий" || dig(r.body, "result", 1, "COMMENT") != "первый #sb-1" || dig(r.body, "result", 2) != nil || dig(r.body, "total") != float64(2) {
		t.Errorf("list: %s", r.raw)
	}
	if r := env.rest(t, env.access, "crm.timeline.comment.list", map[string]any{"filter": map[string]any{"ENTITY_TYPE": "deal"}}); r.status != http.StatusBadRequest {
		t.Errorf("list without ENTITY_ID: %d %s", r.status, r.raw)
	}

	env.sim.FailAfterNext(testMemberID, "batch", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "boom")
	r = env.rest(t, env.access, "batch", map[string]any{"cmd": map[string]any{"a": add(d2, "после сбоя")}})
	if r.status != http.StatusInternalServerError {
		t.Fatalf("fail-after: %d %s", r.status, r.raw)
	}
	if tc := env.portal.TimelineComments(); len(tc) != 4 || tc[3].Comment != "после сбоя" {
		t.Errorf("the failed batch was not applied: %+v", tc)
	}
	if r := env.rest(t, env.access, "batch", map[string]any{"cmd": map[string]any{"a": add(d2, "снова")}}); r.status != http.StatusOK {
		t.Errorf("the failure outlived its count: %d", r.status)
	}
}
