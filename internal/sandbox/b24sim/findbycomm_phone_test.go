package b24sim

import (
	"slices"
	"testing"
)

// findbycomm matches phones the way Bitrix24's duplicate index keys them
// (dedupePhone): formatting and extension ignored, a leading 8 of ten or
// more digits read as 7, "+8…" kept; nothing else is guessed.
func TestFindByCommPhoneKeys(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	trunk8 := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Анна", "PHONE": "8 (912) 345-67-89"})
	national := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Борис", "PHONE": "912 555-66-77"})
	china := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Li", "PHONE": "+86 138 0013 8000"})
	misread := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Decoy", "PHONE": "+7 613 800 13 80 00"})
	find := func(values ...string) []int {
		r := env.ok(t, "crm.duplicate.findbycomm", map[string]any{"type": "PHONE", "entity_type": "CONTACT", "values": values})
		var ids []int
		if l, ok := dig(r.body, "result", "CONTACT").([]any); ok {
			for _, v := range l {
				ids = append(ids, int(v.(float64)))
			}
		}
		return ids
	}
	cases := []struct {
		values []string
		want   []int
	}{
		{[]string{"79123456789"}, []int{trunk8}},
		{[]string{"+7 912 345 67 89"}, []int{trunk8}},
		{[]string{"89123456789"}, []int{trunk8}},
		{[]string{"9123456789"}, nil}, // ten digits stay ten digits
		{[]string{"+79125556677"}, nil},
		{[]string{"9125556677"}, []int{national}},
		{[]string{"+8613800138000"}, []int{china}},
		{[]string{"8613800138000"}, []int{misread}}, // without '+', Bitrix24 reads 8 as 7
		{[]string{"+79125556677", "9125556677", "79123456789"}, []int{trunk8, national}},
	}
	for _, c := range cases {
		if got := find(c.values...); !slices.Equal(got, c.want) {
			t.Errorf("findbycomm %q = %v, want %v", c.values, got, c.want)
		}
	}
}
