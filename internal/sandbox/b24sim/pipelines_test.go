package b24sim

import "testing"

func TestAddDealCategory(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	if err := env.sim.AddDealCategory(testMemberID, DealCategory{ID: 3, Name: "Опт", Sort: 100}); err != nil {
		t.Fatal(err)
	}
	if err := env.sim.AddDealCategory(testMemberID, DealCategory{ID: 3, Name: "again"}); err == nil {
		t.Error("a taken id was accepted")
	}
	if err := env.sim.AddDealCategory(testMemberID, DealCategory{ID: 0, Name: "default"}); err == nil {
		t.Error("id 0 was accepted")
	}
	r := env.ok(t, "crm.category.list", map[string]any{"entityTypeId": 2})
	if dig(r.body, "result", "categories", 0, "id") != float64(3) || dig(r.body, "result", "categories", 0, "name") != "Опт" {
		t.Errorf("categories: %s", r.raw)
	}
	r = env.ok(t, "crm.status.list", map[string]any{"filter": map[string]any{"ENTITY_ID": "DEAL_STAGE_3"}})
	if r.body["total"] != float64(4) || dig(r.body, "result", 0, "STATUS_ID") != "C3:NEW" || dig(r.body, "result", 0, "CATEGORY_ID") != "3" {
		t.Errorf("stages: %s", r.raw)
	}
	// The default pipeline keeps its own eight stages.
	r = env.ok(t, "crm.status.list", map[string]any{"filter": map[string]any{"ENTITY_ID": "DEAL_STAGE"}})
	if r.body["total"] != float64(8) {
		t.Errorf("default stages: %s", r.raw)
	}
}

// A Russian portal names its built-in pipeline, stages and lead statuses
// in Russian, another one in English.
func TestBuiltInNamesInPortalLanguage(t *testing.T) {
	for lang, want := range map[string][3]string{"ru": {"Общая", "Новая", "Не обработан"}, "en": {"General", "New", "Unassigned"}} {
		env := newSim(t, Options{}, PortalOptions{LanguageID: lang})
		r := env.ok(t, "crm.category.list", map[string]any{"entityTypeId": 2})
		if dig(r.body, "result", "categories", 0, "name") != want[0] {
			t.Errorf("%s pipeline: %s", lang, r.raw)
		}
		r = env.ok(t, "crm.status.list", map[string]any{"filter": map[string]any{"ENTITY_ID": "DEAL_STAGE"}})
		if dig(r.body, "result", 0, "NAME") != want[1] {
			t.Errorf("%s stage: %s", lang, r.raw)
		}
		r = env.ok(t, "crm.status.list", map[string]any{"filter": map[string]any{"ENTITY_ID": "STATUS"}})
		if dig(r.body, "result", 0, "NAME") != want[2] {
			t.Errorf("%s lead status: %s", lang, r.raw)
		}
	}
}
