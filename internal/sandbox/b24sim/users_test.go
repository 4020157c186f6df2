package b24sim

import (
	"testing"
)

// A portal with more than a page of users lists them by "start", and a
// deactivated one stays listed with ACTIVE false (left out by FILTER
// ACTIVE true).
func TestUserGetPagesAndDeactivation(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	for id := 100; id < 160; id++ {
		if err := env.sim.PutUser(testMemberID, User{ID: id, Name: "U", LastName: "L"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.sim.SetUserActive(testMemberID, 27, false); err != nil {
		t.Fatal(err)
	}
	if err := env.sim.SetUserActive(testMemberID, 404, false); err == nil {
		t.Error("deactivated an unknown user")
	}
	r := env.ok(t, "user.get", map[string]any{"sort": "ID", "order": "ASC"})
	if r.body["total"] != float64(62) || r.body["next"] != float64(50) || len(r.body["result"].([]any)) != 50 {
		t.Fatalf("first page: total %v next %v", r.body["total"], r.body["next"])
	}
	if dig(r.body, "result", 1, "ID") != "27" || dig(r.body, "result", 1, "ACTIVE") != false || dig(r.body, "result", 0, "ACTIVE") != true {
		t.Errorf("deactivated user: %v", dig(r.body, "result", 1))
	}
	r = env.ok(t, "user.get", map[string]any{"sort": "ID", "order": "ASC", "start": 50})
	if _, more := r.body["next"]; more || len(r.body["result"].([]any)) != 12 {
		t.Errorf("last page: %d rows, next %v", len(r.body["result"].([]any)), r.body["next"])
	}
	r = env.ok(t, "user.get", map[string]any{"FILTER": map[string]any{"ACTIVE": true}})
	if r.body["total"] != float64(61) {
		t.Errorf("active only: total %v", r.body["total"])
	}
}
