package amocrm

import (
	"testing"

	"github.com/switchboard/switchboard/internal/fault"
)

// choose on pipelines the simulator does not model: an archived one, a
// main pipeline that is not first, one with only the unsorted stage.
func TestChoose(t *testing.T) {
	ps := []Pipeline{
		{ID: 1, Name: "old", IsArchive: true, Statuses: []Status{{ID: 11, Sort: 10}, {ID: StatusWon}, {ID: StatusLost}}},
		{ID: 2, Name: "only unsorted", Statuses: []Status{{ID: 21, Type: 1, Sort: 10}, {ID: StatusWon}, {ID: StatusLost}}},
		{ID: 3, Name: "main", IsMain: true, Statuses: []Status{{ID: 33, Sort: 30}, {ID: 31, Type: 1, Sort: 10}, {ID: 32, Sort: 20}, {ID: StatusWon, Sort: 10000}}},
	}
	for _, c := range []struct {
		cat, stage  string
		pipe, st    int
		code, field string
	}{
		{"", "", 3, 32, "", ""},    // main pipeline, first regular status by sort
		{"3", "31", 3, 31, "", ""}, // the unsorted stage, when asked for
		{"", "21", 2, 21, "", ""},  // a status finds its pipeline
		{"1", "", 0, 0, "category_archived", "category_id"},
		{"", "11", 0, 0, "category_archived", "category_id"},
		{"2", "", 0, 0, "stage_unknown", "stage_id"}, // no regular status to default to
		{"3", "21", 0, 0, "stage_unknown", "stage_id"},
		{"3", "142", 0, 0, "stage_closed", "stage_id"},
		{"9", "", 0, 0, "category_unknown", "category_id"},
	} {
		p, s, err := choose(ps, c.cat, c.stage)
		if c.code == "" {
			if err != nil || p != c.pipe || s != c.st {
				t.Errorf("choose(%q, %q) = %d, %d, %v; want %d, %d", c.cat, c.stage, p, s, err, c.pipe, c.st)
			}
			continue
		}
		fe := fault.As(err)
		if fe == nil || fe.Code != c.code || fe.Field != c.field || fe.Kind != fault.Invalid {
			t.Errorf("choose(%q, %q): %v; want %s on %s", c.cat, c.stage, err, c.code, c.field)
		}
	}
}
