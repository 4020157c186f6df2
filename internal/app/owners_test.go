package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

// seedCRMUsers records the portal's users as a refresh would: active ids
// first, then the switched-off ones.
func seedCRMUsers(t *testing.T, e *apptest.Env, integ string, active []string, inactive ...string) {
	t.Helper()
	var us []store.CRMUser
	for _, id := range active {
		us = append(us, store.CRMUser{UserID: id, Name: "User " + id, Active: true})
	}
	for _, id := range inactive {
		us = append(us, store.CRMUser{UserID: id, Name: "User " + id})
	}
	if err := e.App.Store.ReplaceCRMUsers(context.Background(), integ, us); err != nil {
		t.Fatal(err)
	}
}

func bindCRM(t *testing.T, e *apptest.Env, integ, ch string, body map[string]any) map[string]any {
	t.Helper()
	st, v := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, body)
	if st != http.StatusOK {
		t.Fatalf("bind %v: %d %v", body, st, v)
	}
	return v
}

// customerDialogs maps each customer's phone to its dialog in the
// integration.
func customerDialogs(t *testing.T, e *apptest.Env, integ string) map[string]store.DialogView {
	t.Helper()
	ds, _, err := e.App.Store.ListDialogs(context.Background(), store.All, store.DialogFilter{IntegrationID: integ}, nil, 500)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.DialogView{}
	for _, d := range ds {
		out[d.Contact.Phone] = d
	}
	return out
}

func TestBindingPolicyAPI(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		path := "/api/v1/integrations/" + integ + "/channels/" + ch
		owner := map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "1", "weight": 2}, {"user_id": "27", "weight": 1}}}

		// Before the user list was ever read, no user can be named, and
		// the answer says how to read it.
		st, body := e.Do("PUT", path, map[string]any{"mode": "crm", "entity": "deal", "owner": owner})
		if st != http.StatusUnprocessableEntity || errCode(body) != "owner_user_unknown" || errField(body) != "owner.users[0].user_id" ||
			!strings.Contains(errMessage(body), "POST /api/v1/integrations/"+integ+"/refresh") {
			t.Fatalf("unknown user before a refresh: %d %v", st, body)
		}
		seedCRMUsers(t, e, integ, []string{"1", "27", "3"}, "9")

		v := bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "deal", "name": "Продажи Москва", "owner": owner, "on_repeat": "new", "mirror": "each"})
		if v["name"] != "Продажи Москва" || v["on_repeat"] != "new" || v["mirror"] != "each" || v["owner"] == nil {
			t.Fatalf("bind answer: %v", v)
		}
		_, before := e.Do("GET", "/api/v1/integrations/"+integ, nil)
		b := before["bindings"].([]any)[0].(map[string]any)
		o := b["owner"].(map[string]any)
		if b["name"] != "Продажи Москва" || b["on_repeat"] != "new" || o["strategy"] != "round_robin" || len(o["users"].([]any)) != 2 {
			t.Fatalf("GET shows %v", b)
		}

		users := func(ws ...int) []map[string]any {
			var out []map[string]any
			for i, w := range ws {
				out = append(out, map[string]any{"user_id": []string{"1", "27", "3"}[i], "weight": w})
			}
			return out
		}
		for _, c := range []struct {
			name        string
			body        map[string]any
			status      int
			code, field string
		}{
			{"weight 0", map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "round_robin", "users": users(1, 1, 0)}},
				422, "owner_weight_out_of_range", "owner.users[2].weight"},
			{"weight 101", map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "round_robin", "users": users(101)}},
				422, "owner_weight_out_of_range", "owner.users[0].weight"},
			{"switched-off user", map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "first_responder", "users": []map[string]any{{"user_id": "9"}}}},
				422, "owner_user_unknown", "owner.users[0].user_id"},
			{"user never seen", map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "1", "weight": 1}, {"user_id": "777", "weight": 1}}}},
				422, "owner_user_unknown", "owner.users[1].user_id"},
			{"duplicate user", map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "1", "weight": 1}, {"user_id": "1", "weight": 1}}}},
				422, "owner_user_duplicate", "owner.users[1].user_id"},
			{"unknown strategy", map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "random", "users": users(1)}},
				422, "owner_strategy_invalid", "owner.strategy"},
			{"empty rotation", map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "round_robin", "users": []any{}}},
				422, "owner_users_empty", "owner.users"},
			{"unknown on_repeat", map[string]any{"mode": "crm", "entity": "deal", "on_repeat": "reopen"}, 422, "on_repeat_invalid", "on_repeat"},
			{"unknown mirror", map[string]any{"mode": "crm", "entity": "deal", "mirror": "weekly"}, 422, "mirror_invalid", "mirror"},
			{"name too long", map[string]any{"mode": "crm", "entity": "deal", "name": strings.Repeat("я", 101)}, 422, "name_invalid", "name"},
			{"owner in openlines mode", map[string]any{"mode": "openlines", "line_id": "1", "owner": owner}, 422, "field_not_allowed", "owner"},
			{"mirror in openlines mode", map[string]any{"mode": "openlines", "line_id": "1", "mirror": "daily"}, 422, "field_not_allowed", "mirror"},
			{"on_repeat in openlines mode", map[string]any{"mode": "openlines", "line_id": "1", "on_repeat": "new"}, 422, "field_not_allowed", "on_repeat"},
			{"weight as text", map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "1", "weight": "2"}}}},
				400, "invalid_json", ""},
			{"owner field misspelt", map[string]any{"mode": "crm", "entity": "deal", "owners": owner}, 400, "invalid_json", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				st, body := e.Do("PUT", path, c.body)
				if st != c.status || errCode(body) != c.code || errField(body) != c.field || (c.field != "" && !strings.Contains(errMessage(body), c.field)) {
					t.Fatalf("%d %v, want %d %s at %q", st, body, c.status, c.code, c.field)
				}
				if _, after := e.Do("GET", "/api/v1/integrations/"+integ, nil); fmt.Sprint(after["bindings"]) != fmt.Sprint(before["bindings"]) {
					t.Fatalf("a refused bind changed the binding:\n%v\n%v", before["bindings"], after["bindings"])
				}
			})
		}

		// Another workspace's token neither reads nor changes the binding.
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Чужие"})
		_, tok := e.Do("POST", "/api/v1/workspaces/"+other["id"].(string)+"/tokens", nil)
		if st, body := e.Do("PUT", path, map[string]any{"mode": "crm", "entity": "deal", "name": "чужое"}, tok["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("another workspace's bind: %d %v", st, body)
		}
		if st, _ := e.Do("GET", "/api/v1/integrations/"+integ, nil, tok["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("another workspace read the integration: %d", st)
		}

		// A PUT replaces the policy whole; openlines mode takes a name
		// only and shows no CRM-mode fields.
		v = bindCRM(t, e, integ, ch, map[string]any{"mode": "openlines", "line_id": "1", "name": "Линия"})
		if v["name"] != "Линия" || v["owner"] != nil || v["on_repeat"] != nil || v["mirror"] != nil {
			t.Fatalf("openlines binding view: %v", v)
		}
		v = bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "lead"})
		if v["owner"] != nil || v["on_repeat"] != "last_closed" || v["mirror"] != "each" || v["name"] != nil {
			t.Fatalf("defaults after a PUT without the policy: %v", v)
		}

		// The app page has no policy fields: saving it keeps what the API set.
		bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "deal", "name": "Продажи", "owner": owner, "on_repeat": "new", "mirror": "daily"})
		_, set := e.Do("GET", "/api/v1/integrations/"+integ, nil)
		_, page := frame(t, e, "/bitrix24/app", e.B24.UserToken(apptest.B24MemberID, e.Portal.AdminUserID()), "DEFAULT", "{}")
		if st, page := submit(t, e, "/bitrix24/app/bind", url.Values{"sess": {sessOf(t, page)}, "channel_id": {ch}, "mode": {"crm"}, "entity": {"deal"}}); st != http.StatusOK {
			t.Fatalf("page save: %d\n%s", st, page)
		}
		if _, after := e.Do("GET", "/api/v1/integrations/"+integ, nil); fmt.Sprint(after["bindings"]) != fmt.Sprint(set["bindings"]) {
			t.Fatalf("the app page changed the policy:\n%v\n%v", set["bindings"], after["bindings"])
		}
	})
}

func errField(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestRoundRobinOwnersCRM(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		in, err := e.App.Store.GetIntegration(ctx, store.All, integ)
		if err != nil {
			t.Fatal(err)
		}
		seedCRMUsers(t, e, integ, []string{"1", "27", "3", "4"})
		bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "round_robin",
			"users": []map[string]any{{"user_id": "27", "weight": 1}, {"user_id": "3", "weight": 2}, {"user_id": "4", "weight": 5}}}})
		// User 4 is switched off in the CRM after the binding was made:
		// never assigned, and the others share by their weights.
		seedCRMUsers(t, e, integ, []string{"1", "27", "3"}, "4")

		const n = 9
		for i := range n {
			e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, fmt.Sprintf("7916000%04d", i), fmt.Sprintf("Клиент %d", i), "Здравствуйте")
		}
		e.Eventually("a deal per customer", func() bool { return len(e.Portal.Deals()) == n && len(e.Portal.TimelineComments()) == n })
		// A customer writing again keeps the owner and the deal.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "79160000000", "Клиент 0", "Ещё вопрос")
		e.Eventually("second comment", func() bool { return len(e.Portal.TimelineComments()) == n+1 })
		e.WaitIdle() // the links are written after the portal has the records

		counts, err := e.App.Store.OwnerCounts(ctx, bindingID(t, e, integ, ch))
		if err != nil {
			t.Fatal(err)
		}
		if counts["27"] != 3 || counts["3"] != 6 || counts["4"] != 0 || len(counts) != 2 {
			t.Fatalf("owners %v, want 27:3 3:6 by weights 1:2 with 4 switched off", counts)
		}
		dialogs := customerDialogs(t, e, integ)
		contacts := map[string]string{}
		for _, c := range e.Portal.Contacts() {
			contacts[c.Field("ID")] = c.Field("ASSIGNED_BY_ID")
		}
		for _, deal := range e.Portal.Deals() {
			var d store.DialogView
			for _, dv := range dialogs {
				if dv.CRMEntityID == deal.Field("ID") {
					d = dv
				}
			}
			if d.ID == "" || d.CRMEntity != "deal" {
				t.Fatalf("deal %s has no dialog: %v", deal.Field("ID"), dialogs)
			}
			if deal.Field("ASSIGNED_BY_ID") != d.OwnerUserID || contacts[deal.Field("CONTACT_ID")] != d.OwnerUserID || d.OwnerUserID == in.InstalledBy {
				t.Fatalf("deal %v, its contact's owner %s, dialog owner %q", deal, contacts[deal.Field("CONTACT_ID")], d.OwnerUserID)
			}
		}

		// Nobody active: the record goes to the installing user and the
		// dialog stays unassigned.
		seedCRMUsers(t, e, integ, []string{"1"}, "27", "3", "4")
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "79169999999", "Поздний", "Есть кто?")
		e.Eventually("deal for the late customer", func() bool { return len(e.Portal.Deals()) == n+1 })
		e.WaitIdle()
		late := e.Portal.Deals()[n]
		if late.Field("ASSIGNED_BY_ID") != in.InstalledBy || customerDialogs(t, e, integ)["+79169999999"].OwnerUserID != "" {
			t.Fatalf("with nobody active: deal %v", late)
		}
		if !strings.Contains(e.Logs(), "nobody in the owner group is active") {
			t.Fatal("the fallback to the installing user was not logged")
		}
	})
}

func bindingID(t *testing.T, e *apptest.Env, integ, ch string) string {
	t.Helper()
	b, err := e.App.Store.BindingOf(context.Background(), integ, ch)
	if err != nil {
		t.Fatal(err)
	}
	return b.ID
}

func TestFirstResponderCRM(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		in, err := e.App.Store.GetIntegration(ctx, store.All, integ)
		if err != nil {
			t.Fatal(err)
		}
		seedCRMUsers(t, e, integ, []string{in.InstalledBy, "27"})
		bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "first_responder",
			"users": []map[string]any{{"user_id": "27"}}}})
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Когда доставка?")
		e.Eventually("deal", func() bool { return len(e.Portal.Deals()) == 1 && len(e.Portal.TimelineComments()) == 1 })
		e.WaitIdle()
		deal := e.Portal.Deals()[0]
		if deal.Field("ASSIGNED_BY_ID") != in.InstalledBy || customerDialogs(t, e, integ)["+"+customer].OwnerUserID != "" {
			t.Fatalf("before an answer: deal %v, dialog %+v", deal, customerDialogs(t, e, integ)["+"+customer])
		}
		send := func(user int, text string) {
			t.Helper()
			st, page := frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, user), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+deal.Field("ID")+`"}`)
			if st != http.StatusOK {
				t.Fatalf("tab: %d\n%s", st, page)
			}
			st, page = submit(t, e, "/bitrix24/tab/send", url.Values{"sess": {sessOf(t, page)}, "target": {ch + "|+" + customer}, "text": {text}})
			if st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
				t.Fatalf("send from the tab as %d: %d\n%s", user, st, page)
			}
		}
		// The installing user is not in the group: their answer claims nothing.
		admin, _ := strconv.Atoi(in.InstalledBy)
		send(admin, "Здравствуйте, уточняю.")
		e.WaitIdle()
		if d := customerDialogs(t, e, integ)["+"+customer]; d.OwnerUserID != "" || len(e.B24.Calls("crm.deal.update")) != 0 {
			t.Fatalf("a non-member's answer changed the owner: dialog %q, updates %v", d.OwnerUserID, e.B24.Calls("crm.deal.update"))
		}
		// The first member to answer becomes the owner, in the CRM too.
		send(27, "Завтра с 10 до 14.")
		e.Eventually("deal reassigned", func() bool { return e.Portal.Deals()[0].Field("ASSIGNED_BY_ID") == "27" })
		if d := customerDialogs(t, e, integ)["+"+customer]; d.OwnerUserID != "27" {
			t.Fatalf("dialog owner %q", d.OwnerUserID)
		}
		// Later answers, by the owner or anyone else, change nothing more.
		send(27, "Курьер позвонит.")
		send(admin, "Спасибо за ожидание.")
		e.WaitIdle()
		if ups := e.B24.Calls("crm.deal.update"); len(ups) != 1 || e.Portal.Deals()[0].Field("ASSIGNED_BY_ID") != "27" {
			t.Fatalf("updates %v", ups)
		}
		if counts, _ := e.App.Store.OwnerCounts(ctx, bindingID(t, e, integ, ch)); counts["27"] != 1 || len(counts) != 1 {
			t.Fatalf("owner assignments %v", counts)
		}
	})
}

func TestOnRepeatCRM(t *testing.T) {
	for _, entity := range []string{"deal", "lead"} {
		t.Run(entity, func(t *testing.T) {
			apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
				ctx := context.Background()
				integ, ws := e.InstallBitrix24()
				ch := createWAIn(t, e, ws)
				seedCRMUsers(t, e, integ, []string{"27", "3"})
				policy := map[string]any{"mode": "crm", "entity": entity, "on_repeat": "new",
					"owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "27", "weight": 1}, {"user_id": "3", "weight": 1}}}}
				bindCRM(t, e, integ, ch, policy)
				records := e.Portal.Deals
				closeRecord := func(id int) error { return e.B24.SetDealStage(apptest.B24MemberID, id, "WON") }
				if entity == "lead" {
					records = e.Portal.Leads
					closeRecord = func(id int) error { return e.B24.SetLeadStatus(apptest.B24MemberID, id, "JUNK") }
				}
				comments := func(id string) int {
					n := 0
					for _, c := range e.Portal.TimelineComments() {
						if c.EntityType == entity && strconv.Itoa(c.EntityID) == id {
							n++
						}
					}
					return n
				}
				lists := func() int { return len(e.B24.Calls("crm." + entity + ".list")) }
				say := func(text string) {
					e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", text)
				}
				say("Первый заказ")
				e.Eventually("first record", func() bool { return len(records()) == 1 && len(e.Portal.TimelineComments()) == 1 })
				first := records()[0]
				say("Где заказ?")
				e.Eventually("second comment in the open record", func() bool { return comments(first.Field("ID")) == 2 })
				if len(records()) != 1 || lists() != 1 {
					t.Fatalf("an open record: %d records, %d list calls (want one per mirror call with a linked record)", len(records()), lists())
				}

				id, _ := strconv.Atoi(first.Field("ID"))
				if err := closeRecord(id); err != nil {
					t.Fatal(err)
				}
				say("Хочу ещё один заказ")
				e.Eventually("a new record for the repeat customer", func() bool { return len(records()) == 2 && len(e.Portal.TimelineComments()) == 3 })
				e.WaitIdle() // the link is written after the portal has the record
				second := records()[1]
				if comments(second.Field("ID")) != 1 || comments(first.Field("ID")) != 2 {
					t.Fatalf("comments: first %d, second %d", comments(first.Field("ID")), comments(second.Field("ID")))
				}
				// The repeat customer goes back to their owner, and the
				// new record starts where the binding says.
				if second.Field("ASSIGNED_BY_ID") != first.Field("ASSIGNED_BY_ID") || second.Field("CONTACT_ID") != first.Field("CONTACT_ID") {
					t.Fatalf("second record %v after %v", second, first)
				}
				if entity == "deal" && (second.Field("STAGE_ID") != "NEW" || second.Field("CATEGORY_ID") != "0") {
					t.Fatalf("second deal's stage %v", second)
				}
				if d := customerDialogs(t, e, integ)["+"+customer]; d.CRMEntityID != second.Field("ID") || d.OwnerUserID != second.Field("ASSIGNED_BY_ID") {
					t.Fatalf("dialog %+v", d)
				}
				if counts, _ := e.App.Store.OwnerCounts(ctx, bindingID(t, e, integ, ch)); len(counts) != 1 {
					t.Fatalf("the rotation moved for a repeat customer: %v", counts)
				}
				say("И ещё")
				e.Eventually("third comment in the new record", func() bool { return comments(second.Field("ID")) == 2 })

				// The owner is switched off in the CRM: the customer's
				// next new record goes to someone active.
				was := second.Field("ASSIGNED_BY_ID")
				other := map[string]string{"27": "3", "3": "27"}[was]
				seedCRMUsers(t, e, integ, []string{other}, was)
				id, _ = strconv.Atoi(second.Field("ID"))
				if err := closeRecord(id); err != nil {
					t.Fatal(err)
				}
				say("Снова я")
				e.Eventually("a third record", func() bool { return len(records()) == 3 })
				e.WaitIdle()
				third := records()[2]
				if third.Field("ASSIGNED_BY_ID") != other || customerDialogs(t, e, integ)["+"+customer].OwnerUserID != other {
					t.Fatalf("third record %v: want it on %s, %s is switched off", third, other, was)
				}

				// last_closed: a closed record is written into, and
				// nobody asks the portal whether it is closed.
				policy["on_repeat"] = "last_closed"
				seedCRMUsers(t, e, integ, []string{"27", "3"}) // a policy may not name a switched-off user
				bindCRM(t, e, integ, ch, policy)
				id, _ = strconv.Atoi(third.Field("ID"))
				if err := closeRecord(id); err != nil {
					t.Fatal(err)
				}
				before := lists()
				say("После закрытия")
				e.Eventually("comment in the closed record", func() bool { return comments(third.Field("ID")) == 2 })
				if len(records()) != 3 || lists() != before {
					t.Fatalf("last_closed: %d records, %d more list calls", len(records()), lists()-before)
				}
			})
		})
	}
}
