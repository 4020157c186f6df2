package b24sim

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestFindByCommAndContacts(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	r := env.ok(t, "crm.duplicate.findbycomm", map[string]any{"type": "PHONE", "values": []string{"+79161234567"}})
	assertSameJSONValue(t, r.body["result"], []any{}) // nothing found: []

	r = env.restRaw(t, "crm.contact.add", fixture(t, "crm-contact-add-request.json"))
	assertSameShape(t, r.raw, "crm-add-response.json")
	id := r.body["result"].(float64)
	lead := env.sim.AddLead(testMemberID, map[string]any{"TITLE": "WA", "PHONE": "8 (916) 000-00-00"})

	r = env.ok(t, "crm.duplicate.findbycomm", map[string]any{"entity_type": "CONTACT", "type": "PHONE", "values": []string{"+7 916 123-45-67 ext. 5", "nobody"}})
	assertSameShape(t, r.raw, "crm-duplicate-findbycomm-response.json")
	if dig(r.body, "result", "CONTACT", 0) != id {
		t.Errorf("findbycomm: %s", r.raw)
	}
	r = env.ok(t, "crm.duplicate.findbycomm", map[string]any{"type": "PHONE", "values": []string{"89160000000"}})
	if dig(r.body, "result", "LEAD", 0) != float64(lead) || dig(r.body, "result", "CONTACT") != nil {
		t.Errorf("lead by phone: %s", r.raw)
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = "1"
	}
	if r := env.rest(t, env.access, "crm.duplicate.findbycomm", map[string]any{"type": "PHONE", "values": many}); r.status != http.StatusBadRequest {
		t.Errorf("21 values: %d", r.status)
	}

	// get returns strings and multifields; update merges multifields by ID.
	r = env.ok(t, "crm.contact.get", map[string]any{"id": id})
	c := r.body["result"].(map[string]any)
	if c["NAME"] != "Anna" || c["ASSIGNED_BY_ID"] != "27" || c["SOURCE_ID"] != "WHATSAPP" || c["OPENED"] != "Y" {
		t.Errorf("contact: %v", c)
	}
	phoneID := dig(c, "PHONE", 0, "ID")
	env.ok(t, "crm.contact.update", map[string]any{"id": id, "fields": map[string]any{
		"LAST_NAME": "Petrova",
		"PHONE":     []any{map[string]any{"ID": phoneID, "VALUE": ""}, map[string]any{"VALUE": "+79990001122", "VALUE_TYPE": "WORK"}},
	}})
	got := env.portal.Contacts()[0]
	if got.Field("LAST_NAME") != "Petrova" || len(got.Values("PHONE")) != 1 || got.Values("PHONE")[0] != "+79990001122" {
		t.Errorf("after update: %v", got)
	}
	if r := env.rest(t, env.access, "crm.contact.get", map[string]any{"id": 424242}); r.status != 400 || r.errCode() != "" || r.body["error_description"] != "Not found" {
		t.Errorf("missing contact: %d %s", r.status, r.raw)
	}
}

func TestDealList(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{DealCategories: []DealCategory{{ID: 1, Name: "WhatsApp sales", Sort: 200}}})
	contact := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Anna"})
	other := env.sim.AddContact(testMemberID, map[string]any{"NAME": "Boris"})
	won := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "WhatsApp: Anna Smirnova", "CONTACT_ID": contact, "STAGE_ID": "WON", "SOURCE_ID": "WHATSAPP"})
	r := env.ok(t, "crm.deal.add", map[string]any{"fields": map[string]any{"TITLE": "WhatsApp: Anna Smirnova", "CATEGORY_ID": 1, "STAGE_ID": "C1:PREPARATION", "CONTACT_IDS": []int{contact}, "ASSIGNED_BY_ID": 27, "SOURCE_ID": "WHATSAPP"}})
	open := r.body["result"].(float64)
	env.sim.AddDeal(testMemberID, map[string]any{"CONTACT_ID": other})

	r = env.ok(t, "crm.deal.list", map[string]any{"filter": map[string]any{"CONTACT_ID": contact}, "order": map[string]any{"ID": "DESC"},
		"select": []string{"ID", "TITLE", "CATEGORY_ID", "STAGE_ID", "STAGE_SEMANTIC_ID", "CLOSED", "CONTACT_ID", "ASSIGNED_BY_ID", "SOURCE_ID", "OPENED", "DATE_CREATE", "DATE_MODIFY"}})
	assertSameShape(t, r.raw, "crm-deal-list-response.json")
	rows := r.body["result"].([]any)
	if len(rows) != 2 || dig(rows, 0, "ID") != formatID(open) || dig(rows, 0, "STAGE_SEMANTIC_ID") != "P" || dig(rows, 0, "CLOSED") != "N" ||
		dig(rows, 0, "CATEGORY_ID") != "1" || dig(rows, 1, "STAGE_SEMANTIC_ID") != "S" || dig(rows, 1, "CLOSED") != "Y" || dig(rows, 1, "ID") != formatID(float64(won)) {
		t.Errorf("deal.list: %s", r.raw)
	}
	r = env.ok(t, "crm.deal.list", map[string]any{"filter": map[string]any{"CONTACT_ID": contact, "CLOSED": "N"}})
	if n := len(r.body["result"].([]any)); n != 1 || r.body["total"] != float64(1) {
		t.Errorf("open deals: %s", r.raw)
	}
	r = env.ok(t, "crm.deal.list", map[string]any{"filter": map[string]any{"STAGE_SEMANTIC_ID": "P"}})
	if n := len(r.body["result"].([]any)); n != 2 {
		t.Errorf("in progress: %d", n)
	}

	r = env.ok(t, "crm.category.list", map[string]any{"entityTypeId": 2})
	assertSameShape(t, r.raw, "crm-category-list-response.json")
	if dig(r.body, "result", "categories", 0, "id") != float64(1) || dig(r.body, "result", "categories", 1, "isDefault") != "Y" {
		t.Errorf("categories: %s", r.raw)
	}
	r = env.ok(t, "crm.status.list", map[string]any{"filter": map[string]any{"ENTITY_ID": "DEAL_STAGE_1"}})
	assertSameShape(t, r.raw, "crm-status-list-deal-stage-response.json")
	if r.body["total"] != float64(4) || dig(r.body, "result", 1, "STATUS_ID") != "C1:PREPARATION" || dig(r.body, "result", 2, "SEMANTICS") != "S" {
		t.Errorf("stages: %s", r.raw)
	}
	r = env.ok(t, "crm.status.add", map[string]any{"fields": map[string]any{"ENTITY_ID": "SOURCE", "STATUS_ID": "WHATSAPP", "NAME": "WhatsApp", "SORT": 5}})
	if _, ok := r.body["result"].(float64); !ok {
		t.Errorf("status.add: %s", r.raw)
	}
	if r := env.rest(t, env.access, "crm.status.add", map[string]any{"fields": map[string]any{"ENTITY_ID": "SOURCE", "STATUS_ID": "WHATSAPP", "NAME": "x"}}); r.status != 400 {
		t.Errorf("duplicate status: %d", r.status)
	}
	r = env.ok(t, "crm.status.list", map[string]any{"filter": map[string]any{"ENTITY_ID": "SOURCE"}})
	if dig(r.body, "result", 0, "STATUS_ID") != "WHATSAPP" {
		t.Errorf("sources ordered by SORT: %s", r.raw)
	}
}

func formatID(f float64) string { return strconv.Itoa(int(f)) }

func itoa(n int) string { return strconv.Itoa(n) }

func TestTimelineTodoNotify(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	deal := env.sim.AddDeal(testMemberID, map[string]any{"TITLE": "x"})
	req := []byte(`{"fields":{"ENTITY_ID":` + itoa(deal) + `,"ENTITY_TYPE":"deal","COMMENT":"Клиент написал","FILES":[["a.txt","` + base64.StdEncoding.EncodeToString([]byte("hi")) + `"]]},"auth":"` + fixtureToken + `"}`)
	r := env.restRaw(t, "crm.timeline.comment.add", req)
	if _, ok := r.body["result"].(float64); !ok {
		t.Fatalf("comment: %d %s", r.status, r.raw)
	}
	// Upper-case FIELDS is rejected: the key must be lowercase.
	if r := env.rest(t, env.access, "crm.timeline.comment.add", map[string]any{"FIELDS": map[string]any{"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": "x"}}); r.status != 400 {
		t.Errorf("FIELDS accepted: %d %s", r.status, r.raw)
	}
	if tc := env.portal.TimelineComments(); len(tc) != 1 || tc[0].EntityID != deal || tc[0].Comment != "Клиент написал" || string(tc[0].Files[0].Content) != "hi" {
		t.Errorf("TimelineComments() = %+v", tc)
	}

	r = env.ok(t, "crm.activity.todo.add", map[string]any{"ownerTypeId": 2, "ownerId": deal, "deadline": "2026-01-05T10:00:00+03:00", "title": "Answer", "responsibleId": 27, "pingOffsets": []int{0, 15}})
	if _, ok := dig(r.body, "result", "id").(float64); !ok {
		t.Errorf("todo: %s", r.raw)
	}
	if td := env.portal.Todos(); len(td) != 1 || td[0].ResponsibleID != 27 || len(td[0].PingOffsets) != 2 {
		t.Errorf("Todos() = %+v", td)
	}

	notify := fixture(t, "im-notify-system-add-request.json")
	env.restRaw(t, "im.notify.system.add", notify)
	r = env.restRaw(t, "im.notify.system.add", notify)
	if _, ok := r.body["result"].(float64); !ok {
		t.Errorf("notify: %s", r.raw)
	}
	n := env.portal.Notifications()
	if len(n) != 2 || !n[0].Replaced || n[1].Replaced || n[1].UserID != 27 || n[1].Tag != "acme_unanswered_1807" {
		t.Errorf("Notifications() = %+v", n)
	}
	env.ok(t, "im.message.add", map[string]any{"DIALOG_ID": "chat1807", "MESSAGE": "hi"})
	if m := env.portal.ChatMessages(); len(m) != 1 || m[0].DialogID != "chat1807" {
		t.Errorf("ChatMessages() = %+v", m)
	}
}

func TestUsersAndDepartments(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	r := env.ok(t, "user.get", map[string]any{"FILTER": map[string]any{"ACTIVE": true}})
	assertSameShape(t, r.raw, "user-get-response.json")
	if r.body["total"] != float64(2) || dig(r.body, "result", 1, "ID") != "27" || dig(r.body, "result", 1, "UF_DEPARTMENT", 0) != float64(5) {
		t.Errorf("user.get: %s", r.raw)
	}
	r = env.ok(t, "user.get", map[string]any{"FILTER": map[string]any{"UF_DEPARTMENT": 5}})
	if r.body["total"] != float64(1) {
		t.Errorf("by department: %s", r.raw)
	}
	r = env.ok(t, "user.get", map[string]any{"ID": 1})
	if r.body["total"] != float64(1) || dig(r.body, "result", 0, "NAME") != "Ivan" {
		t.Errorf("top-level filter: %s", r.raw)
	}
	r = env.ok(t, "department.get", nil)
	assertSameShape(t, r.raw, "department-get-response.json")
	r = env.ok(t, "user.current", nil)
	if dig(r.body, "result", "ID") != "1" {
		t.Errorf("user.current: %s", r.raw)
	}
	r = env.ok(t, "app.info", nil)
	if dig(r.body, "result", "CODE") != testClientID || dig(r.body, "result", "INSTALLED") != true || dig(r.body, "result", "STATUS") != "P" {
		t.Errorf("app.info: %s", r.raw)
	}
}

// TestOriginFilter: ORIGINATOR_ID and ORIGIN_ID (the external system and
// the item's id there) are kept on add and filter crm.*.list, as the
// portal's own fields do, so an integration finds what it created.
func TestOriginFilter(t *testing.T) {
	env := newSim(t, Options{}, PortalOptions{})
	for _, m := range []string{"crm.lead.add", "crm.deal.add", "crm.contact.add"} {
		env.ok(t, m, map[string]any{"fields": map[string]any{"TITLE": "other", "ORIGINATOR_ID": "switchboard", "ORIGIN_ID": "r:b1:c2"}})
		r := env.ok(t, m, map[string]any{"fields": map[string]any{"TITLE": "ours", "ORIGINATOR_ID": "switchboard", "ORIGIN_ID": "r:b1:c1"}})
		id := formatID(r.body["result"].(float64))
		list := strings.Replace(m, ".add", ".list", 1)
		r = env.ok(t, list, map[string]any{"filter": map[string]any{"ORIGINATOR_ID": "switchboard", "ORIGIN_ID": "r:b1:c1"}, "select": []string{"ID", "ORIGIN_ID"}})
		rows, _ := r.body["result"].([]any)
		if len(rows) != 1 || dig(rows[0], "ID") != id || dig(rows[0], "ORIGIN_ID") != "r:b1:c1" {
			t.Errorf("%s by origin: %s", list, r.raw)
		}
		r = env.ok(t, list, map[string]any{"filter": map[string]any{"ORIGINATOR_ID": "someone", "ORIGIN_ID": "r:b1:c1"}})
		if rows, _ := r.body["result"].([]any); len(rows) != 0 {
			t.Errorf("%s by another originator: %s", list, r.raw)
		}
	}
}
