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

func TestClosingRecords(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	if err := env.sim.AddDealCategory(testMemberID, DealCategory{ID: 2, Name: "Опт"}); err != nil {
		t.Fatal(err)
	}
	open := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "open"})
	won := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "won"})
	lost := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "lost", "CATEGORY_ID": "2"})
	lead := env.sim.AddLead(testMemberID, map[string]any{"TITLE": "lead"})
	for _, err := range []error{env.sim.SetDealStage(testMemberID, won, "WON"), env.sim.SetDealStage(testMemberID, lost, "C2:LOSE"),
		env.sim.SetLeadStatus(testMemberID, lead, "CONVERTED")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := env.sim.SetDealStage(testMemberID, 9999, "WON"); err == nil {
		t.Error("a missing deal was closed")
	}
	// One list call answers for several records, as the gateway asks.
	r := env.ok(t, "crm.deal.list", map[string]any{"filter": map[string]any{"@ID": []int{open, won, lost}}, "select": []string{"ID", "CLOSED", "STAGE_SEMANTIC_ID"}})
	want := map[string][2]string{itoa(open): {"N", "P"}, itoa(won): {"Y", "S"}, itoa(lost): {"Y", "F"}}
	rows, _ := r.body["result"].([]any)
	if len(rows) != 3 {
		t.Fatalf("list: %s", r.raw)
	}
	for _, row := range rows {
		m := row.(map[string]any)
		w := want[m["ID"].(string)]
		if m["CLOSED"] != w[0] || m["STAGE_SEMANTIC_ID"] != w[1] || m["TITLE"] != nil {
			t.Errorf("deal %v, want CLOSED %s semantic %s and only the selected fields", m, w[0], w[1])
		}
	}
	r = env.ok(t, "crm.lead.get", map[string]any{"id": lead})
	if dig(r.body, "result", "STATUS_SEMANTIC_ID") != "S" {
		t.Errorf("converted lead: %s", r.raw)
	}
	// Reassignment is recorded with the rest of the update.
	env.ok(t, "crm.deal.update", map[string]any{"id": open, "fields": map[string]any{"ASSIGNED_BY_ID": "27"}})
	if calls := env.sim.Calls("crm.deal.update"); len(calls) != 1 || env.sim.Portal(testMemberID).Deals()[0].Field("ASSIGNED_BY_ID") != "27" {
		t.Errorf("update: %v", calls)
	}
}
