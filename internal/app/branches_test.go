package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// The second portal of the branch tests (Kazan); the first is the
// fixtures' portal (Moscow).
const (
	kazanMemberID = "b7e1c0d2a3f4e5d6c7b8a9f0e1d2c3b4"
	kazanDomain   = "kazan.bitrix24.ru"
	kazanAppToken = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// branchOpts puts every installed portal in the default workspace: one
// business, one number, several CRMs.
var branchOpts = apptest.Options{Bitrix24: true, Config: func(c *config.Config) { c.Bitrix24Workspace = "default" }}

// commentsWith counts a portal's timeline comments that contain text.
func commentsWith(p *b24sim.Portal, text string) int {
	n := 0
	for _, c := range p.TimelineComments() {
		if strings.Contains(c.Comment, text) {
			n++
		}
	}
	return n
}

// textsTo lists the texts the gateway sent a customer through the Graph API.
func textsTo(e *apptest.Env, waID string) []string {
	var out []string
	for _, r := range graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages") {
		var b struct {
			To   string `json:"to"`
			Text struct {
				Body string `json:"body"`
			} `json:"text"`
		}
		if json.Unmarshal(r.Body, &b) == nil && b.To == waID {
			out = append(out, b.Text.Body)
		}
	}
	return out
}

// frameOn opens a placement page as a user of the given portal.
func frameOn(t *testing.T, e *apptest.Env, memberID, domain, path, placement, options string) string {
	t.Helper()
	form := url.Values{"AUTH_ID": {e.B24.UserToken(memberID, 1)}, "AUTH_EXPIRES": {"3600"}, "member_id": {memberID}, "status": {"P"},
		"PLACEMENT": {placement}, "PLACEMENT_OPTIONS": {options}}
	resp, err := http.PostForm(e.URL+path+"?DOMAIN="+domain+"&PROTOCOL=1&LANG=ru&APP_SID=x", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s on %s: %d\n%s", path, domain, resp.StatusCode, b)
	}
	return string(b)
}

func TestBranchRouting(t *testing.T) {
	apptest.Each(t, branchOpts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		msk, ws := e.InstallBitrix24()
		mskPortal := e.Portal
		kznPortal, kzn := e.InstallBitrix24Portal(kazanMemberID, kazanDomain, kazanAppToken)
		ch := createWAIn(t, e, ws)
		for _, in := range []string{msk, kzn} {
			if st, body := e.Do("PUT", "/api/v1/integrations/"+in+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
				t.Fatalf("bind %s: %d %v", in, st, body)
			}
		}
		routingPath := "/api/v1/channels/" + ch + "/routing"
		if st, body := e.Do("GET", routingPath, nil); st != http.StatusOK || body["mode"] != "all" {
			t.Fatalf("routing before: %d %v", st, body)
		}

		good := func() map[string]any {
			return map[string]any{"mode": "branch", "branches": []map[string]any{
				{"integration_id": msk, "name": "Москва", "keywords": []string{"москва", "msk"}},
				{"integration_id": kzn, "name": "Казань", "keywords": []string{"казань", "kazan"}, "numbers": []string{"8 (912) 000-00-00"}},
			}}
		}
		// Bad input: a named 4xx, and nothing changes.
		for _, tc := range []struct {
			name string
			edit func(m map[string]any)
			st   int
			code string
		}{
			{"unknown mode", func(m map[string]any) { m["mode"] = "random" }, 422, "mode_invalid"},
			{"unknown field", func(m map[string]any) { m["menu"] = "x" }, 400, "invalid_json"},
			{"integration not bound", func(m map[string]any) {
				m["branches"].([]map[string]any)[1]["integration_id"] = "01J00000000000000000000000"
			}, 422, "branch_integration_not_bound"},
			{"empty name", func(m map[string]any) { m["branches"].([]map[string]any)[0]["name"] = " " }, 422, "branch_name_invalid"},
			{"same name", func(m map[string]any) { m["branches"].([]map[string]any)[1]["name"] = "москва" }, 422, "branch_name_duplicate"},
			{"a number in two branches", func(m map[string]any) {
				m["branches"].([]map[string]any)[0]["numbers"] = []string{"+7 912 000 00 00"}
			}, 422, "number_duplicate"},
			{"not a number", func(m map[string]any) { m["branches"].([]map[string]any)[0]["numbers"] = []string{"звоните"} }, 422, "number_invalid"},
			{"a keyword in two branches", func(m map[string]any) { m["branches"].([]map[string]any)[1]["keywords"] = []string{"MSK"} }, 422, "keyword_duplicate"},
		} {
			m := good()
			tc.edit(m)
			st, body := e.Do("PUT", routingPath, m)
			if st != tc.st || (tc.code != "invalid_json" && errCode(body) != tc.code) {
				t.Fatalf("%s: %d %v, want %d %s", tc.name, st, body, tc.st, tc.code)
			}
		}
		if _, body := e.Do("GET", routingPath, nil); body["mode"] != "all" || len(body["branches"].([]any)) != 0 {
			t.Fatalf("a refused routing was stored: %v", body)
		}
		// Another workspace's token sees no such channel.
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Чужой"})
		_, tok := e.Do("POST", "/api/v1/workspaces/"+other["id"].(string)+"/tokens", nil)
		if st, _ := e.Do("PUT", routingPath, good(), tok["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("another workspace changed the routing: %d", st)
		}
		if st, _ := e.Do("GET", routingPath, nil, tok["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("another workspace read the routing: %d", st)
		}
		st, body := e.Do("PUT", routingPath, good())
		if st != http.StatusOK {
			t.Fatalf("routing: %d %v", st, body)
		}
		if n := body["branches"].([]any)[1].(map[string]any)["numbers"].([]any); len(n) != 1 || n[0] != "+79120000000" {
			t.Fatalf("numbers not normalised: %v", body)
		}

		// Customer A names a branch in the first message: Moscow only.
		const a, b, c = "79161110001", "79162220002", "79120000000"
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, a, "Анна", "Москва, хочу заказать")
		e.Eventually("A in Moscow", func() bool { return commentsWith(mskPortal, "хочу заказать") == 1 })

		// Customer B names none: the menu, nothing in either CRM.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, b, "Борис", "Добрый день")
		e.Eventually("menu to B", func() bool { return len(textsTo(e, b)) == 1 })
		if m := textsTo(e, b)[0]; !strings.Contains(m, "1 — Москва\n2 — Казань") || !strings.HasPrefix(m, "Здравствуйте") {
			t.Fatalf("menu %q", m)
		}
		// A customer with no branch has no date either.
		if st, v := e.Do("GET", "/api/v1/channels/"+ch+"/customers/"+b+"/branch", nil); st != http.StatusOK || v["integration_id"] != "" || v["since"] != nil {
			t.Fatalf("B's branch while choosing: %d %v", st, v)
		}
		// An invalid answer gets the menu again.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, b, "Борис", "7")
		e.Eventually("second menu to B", func() bool { return len(textsTo(e, b)) == 2 })
		e.WaitIdle()
		if commentsWith(mskPortal, "Добрый день")+commentsWith(kznPortal, "Добрый день") != 0 || len(kznPortal.Contacts()) != 0 {
			t.Fatal("a customer still choosing reached a CRM")
		}
		// "2" chooses Kazan: the held messages go there, and only there.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, b, "Борис", "2")
		e.Eventually("B's held message in Kazan", func() bool { return commentsWith(kznPortal, "Добрый день") == 1 })
		// Kazan's dialog counts what B wrote while choosing, and waits since the first.
		dialogOf := func(in, waID string) map[string]any {
			for _, d := range dialogsOf(t, e, "integration_id="+in) {
				if d["customer"].(map[string]any)["id"] == waID {
					return d
				}
			}
			return nil
		}
		at := func(v any) time.Time {
			s, _ := v.(string)
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatalf("time %v: %v", v, err)
			}
			return ts
		}
		if dv := dialogOf(kzn, b); dv == nil || dv["unread_count"] != float64(3) || dv["waiting"] != true ||
			!at(dv["waiting_since"]).Before(at(dv["last_inbound_at"])) {
			t.Fatalf("Kazan's dialog with B: %v", dv)
		}
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, b, "Борис", "Когда откроетесь?")
		e.Eventually("B's next message in Kazan", func() bool { return commentsWith(kznPortal, "Когда откроетесь?") == 1 })
		// C is on Kazan's list of numbers; the Moscow keyword does not matter.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, c, "Вера", "Москва?")
		e.Eventually("C in Kazan", func() bool { return commentsWith(kznPortal, "Москва?") == 1 })
		e.WaitIdle()
		for _, text := range []string{"Добрый день", "Когда откроетесь?", "Москва?"} {
			if commentsWith(mskPortal, text) != 0 {
				t.Fatalf("%q reached Moscow", text)
			}
		}
		if commentsWith(kznPortal, "хочу заказать") != 0 {
			t.Fatal("A reached Kazan")
		}
		if len(textsTo(e, a)) != 0 || len(textsTo(e, c)) != 0 {
			t.Fatal("a menu to a customer whose branch a rule chose")
		}

		// D never chooses: MaxMenus (3) menus, then the first branch of the
		// list (no default is configured) takes D and what D wrote, so D is
		// never lost from sight.
		const d = "79163330003"
		for i, text := range []string{"привет", "?", "??", "???"} {
			if i > 0 && i <= 3 {
				// D answers each menu with nonsense once it arrived.
				e.Eventually("menu to D", func() bool { return len(textsTo(e, d)) == i })
			}
			e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, d, "Дина", text)
			e.Eventually("D's message stored", func() bool {
				n := 0
				for _, m := range e.Messages(ch) {
					if m["direction"] == "in" && m["text"] == text {
						n++
					}
				}
				return n == 1
			})
		}
		e.WaitIdle()
		if n := len(textsTo(e, d)); n != 3 {
			t.Fatalf("D got %d menus, want 3", n)
		}
		if st, v := e.Do("GET", "/api/v1/channels/"+ch+"/customers/"+d+"/branch", nil); st != http.StatusOK || v["integration_id"] != msk || v["source"] != "default" {
			t.Fatalf("D's branch: %d %v", st, v)
		}
		e.Eventually("D's held messages in Moscow", func() bool {
			return commentsWith(mskPortal, "???") == 1 && commentsWith(mskPortal, "привет") == 1
		})
		if dv := dialogOf(msk, d); dv == nil || dv["unread_count"] != float64(4) || dv["waiting"] != true {
			t.Fatalf("Moscow's dialog with D: %v", dv)
		}

		// E is still choosing when an admin puts them in Kazan: what E wrote
		// goes there at once, not only with E's next message.
		const f = "79164440004"
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, f, "Ефим", "Здрасьте")
		e.Eventually("menu to E", func() bool { return len(textsTo(e, f)) == 1 })
		var heldAt time.Time
		for _, m := range e.Messages(ch) {
			if m["text"] == "Здрасьте" {
				heldAt = at(m["created_at"])
			}
		}
		st, v := e.Do("PUT", "/api/v1/channels/"+ch+"/customers/"+f+"/branch", map[string]any{"integration_id": kzn})
		if st != http.StatusOK || v["source"] != "moved" {
			t.Fatalf("move E: %d %v", st, v)
		}
		// E's branch starts with what E wrote while choosing, not in 1970.
		if since := at(v["since"]); since.After(heldAt) || heldAt.Sub(since) > time.Second {
			t.Fatalf("E's branch since %v, first held message at %v", since, heldAt)
		}
		e.Eventually("E's held message in Kazan", func() bool { return commentsWith(kznPortal, "Здрасьте") == 1 })
		if dv := dialogOf(kzn, f); dv == nil || dv["unread_count"] != float64(1) || dv["waiting"] != true {
			t.Fatalf("Kazan's dialog with E: %v", dv)
		}

		// Each branch lists its own customers only.
		customersOf := func(in string) map[string]bool {
			out := map[string]bool{}
			for _, d := range dialogsOf(t, e, "integration_id="+in) {
				out[d["customer"].(map[string]any)["id"].(string)] = true
			}
			return out
		}
		if got := customersOf(msk); len(got) != 2 || !got[a] || !got[d] {
			t.Fatalf("Moscow's dialogs: %v", got)
		}
		if got := customersOf(kzn); len(got) != 3 || !got[b] || !got[c] || !got[f] {
			t.Fatalf("Kazan's dialogs: %v", got)
		}
		branchPath := "/api/v1/channels/" + ch + "/customers/" + b + "/branch"
		if st, v := e.Do("GET", branchPath, nil); st != http.StatusOK || v["integration_id"] != kzn || v["source"] != "menu" || v["name"] != "Казань" {
			t.Fatalf("B's branch: %d %v", st, v)
		}

		// The card tab of Kazan's portal does not show Moscow's customer,
		// and cannot write to them; Moscow's does.
		contactIn := func(member, phone string) string {
			id := e.B24.AddContact(member, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": phone}}})
			return `{"ID":"` + strconv.Itoa(id) + `"}`
		}
		if page := frameOn(t, e, apptest.B24MemberID, apptest.B24Domain, "/bitrix24/tab", "CRM_CONTACT_DETAIL_TAB", contactIn(apptest.B24MemberID, "8 916 111-00-01")); !strings.Contains(page, "хочу заказать") {
			t.Fatalf("Moscow's tab misses its customer:\n%s", page)
		}
		page := frameOn(t, e, kazanMemberID, kazanDomain, "/bitrix24/tab", "CRM_CONTACT_DETAIL_TAB", contactIn(kazanMemberID, "8 916 111-00-01"))
		if strings.Contains(page, "хочу заказать") {
			t.Fatalf("Kazan's tab shows Moscow's customer:\n%s", page)
		}
		sent := len(graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages"))
		_, page = submit(t, e, "/bitrix24/tab/send", url.Values{"sess": {sessOf(t, page)}, "target": {ch + "|+79161110001"}, "text": {"Из Казани"}})
		if !strings.Contains(page, "другому филиалу") {
			t.Fatalf("Kazan wrote to Moscow's customer:\n%s", page)
		}
		e.WaitIdle()
		if n := len(graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages")); n != sent {
			t.Fatalf("%d messages went out after a refused send", n-sent)
		}

		// Move B to Moscow: the next message goes there only, and Kazan no
		// longer lists B.
		for _, bad := range []struct {
			path string
			body map[string]any
			st   int
			code string
		}{
			{branchPath, map[string]any{"integration_id": "01J00000000000000000000000"}, 422, "branch_integration_not_bound"},
			{"/api/v1/channels/" + ch + "/customers/79990000000/branch", map[string]any{"integration_id": msk}, 404, "customer_not_found"},
		} {
			if st, v := e.Do("PUT", bad.path, bad.body); st != bad.st || errCode(v) != bad.code {
				t.Fatalf("move %v: %d %v", bad.body, st, v)
			}
		}
		if st, _ := e.Do("PUT", branchPath, map[string]any{"integration_id": msk}, tok["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("another workspace moved a customer: %d", st)
		}
		if st, _ := e.Do("GET", branchPath, nil, tok["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("another workspace read a customer's branch: %d", st)
		}
		if _, v := e.Do("GET", branchPath, nil); v["integration_id"] != kzn {
			t.Fatalf("a refused move moved B: %v", v)
		}
		// The number as people write it finds the customer too.
		if st, v := e.Do("PUT", "/api/v1/channels/"+ch+"/customers/8%20(916)%20222-00-02/branch", map[string]any{"integration_id": msk}); st != http.StatusOK || v["integration_id"] != msk || v["source"] != "moved" {
			t.Fatalf("move B: %d %v", st, v)
		}
		if got := customersOf(kzn); got[b] {
			t.Fatalf("Kazan still lists B after the move: %v", got)
		}
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, b, "Борис", "Я теперь в Москве")
		e.Eventually("B's message in Moscow", func() bool { return commentsWith(mskPortal, "Я теперь в Москве") == 1 })
		e.WaitIdle()
		if commentsWith(kznPortal, "Я теперь в Москве") != 0 {
			t.Fatal("after the move B's message reached Kazan")
		}
		if commentsWith(mskPortal, "Добрый день")+commentsWith(mskPortal, "Когда откроетесь?") != 0 {
			t.Fatal("the move copied B's Kazan history to Moscow")
		}
		if got := customersOf(msk); len(got) != 3 || !got[a] || !got[b] || !got[d] {
			t.Fatalf("Moscow's dialogs after the move: %v", got)
		}
		if len(textsTo(e, b)) != 2 {
			t.Fatalf("B got %d menus, want 2", len(textsTo(e, b)))
		}
	})
}

// A customer who wrote while choosing and is released by switching the
// channel back to "all" counts as waiting in every CRM's dialog (last
// inbound, unread, waiting) and is announced there, as a move would do.
func TestBranchSwitchToAllReleasesHeld(t *testing.T) {
	apptest.Each(t, branchOpts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		msk, ws := e.InstallBitrix24()
		mskPortal := e.Portal
		kznPortal, kzn := e.InstallBitrix24Portal(kazanMemberID, kazanDomain, kazanAppToken)
		ch := createWAIn(t, e, ws)
		for _, in := range []string{msk, kzn} {
			if st, body := e.Do("PUT", "/api/v1/integrations/"+in+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
				t.Fatalf("bind %s: %d %v", in, st, body)
			}
		}
		routingPath := "/api/v1/channels/" + ch + "/routing"
		branches := []map[string]any{{"integration_id": msk, "name": "Москва"}, {"integration_id": kzn, "name": "Казань"}}
		if st, body := e.Do("PUT", routingPath, map[string]any{"mode": "branch", "branches": branches}); st != http.StatusOK {
			t.Fatalf("routing: %d %v", st, body)
		}
		const g = "79165550005"
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, g, "Галина", "Есть доставка?")
		e.Eventually("menu to G", func() bool { return len(textsTo(e, g)) == 1 })
		e.WaitIdle()
		if n := len(dialogsOf(t, e, "waiting=true")); n != 0 {
			t.Fatalf("%d waiting dialogs while G chooses", n)
		}
		if st, body := e.Do("PUT", routingPath, map[string]any{"mode": "all", "branches": branches}); st != http.StatusOK {
			t.Fatalf("routing all: %d %v", st, body)
		}
		for _, in := range []string{msk, kzn} {
			ds := dialogsOf(t, e, "integration_id="+in)
			if len(ds) != 1 || ds[0]["customer"].(map[string]any)["id"] != g || ds[0]["unread_count"] != float64(1) ||
				ds[0]["waiting"] != true || ds[0]["last_inbound_at"] == nil {
				t.Fatalf("dialogs of %s after the switch: %v", in, ds)
			}
		}
		for _, p := range []*b24sim.Portal{mskPortal, kznPortal} {
			e.Eventually("G's message in both CRMs", func() bool { return commentsWith(p, "Есть доставка?") == 1 })
			e.Eventually("G announced in both CRMs", func() bool {
				for _, n := range p.Notifications() {
					if strings.HasSuffix(n.Tag, "|new") {
						return true
					}
				}
				return false
			})
		}
	})
}

// The branch menu is the gateway's own automatic message: with the hour's
// only dialog already used, a customer who has to choose still gets it at
// once, and it takes no dialog; a reply a user sends to a new customer is
// still held.
func TestBranchMenuOutsideDialogLimit(t *testing.T) {
	apptest.Each(t, branchOpts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		msk, ws := e.InstallBitrix24()
		_, kzn := e.InstallBitrix24Portal(kazanMemberID, kazanDomain, kazanAppToken)
		ch := createWAIn(t, e, ws)
		for _, in := range []string{msk, kzn} {
			if st, body := e.Do("PUT", "/api/v1/integrations/"+in+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
				t.Fatalf("bind %s: %d %v", in, st, body)
			}
		}
		branches := []map[string]any{{"integration_id": msk, "name": "Москва", "keywords": []string{"москва"}}, {"integration_id": kzn, "name": "Казань"}}
		if st, body := e.Do("PUT", "/api/v1/channels/"+ch+"/routing", map[string]any{"mode": "branch", "branches": branches}); st != http.StatusOK {
			t.Fatalf("routing: %d %v", st, body)
		}
		if st, body := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"dialogs_per_hour_limit": 1}); st != http.StatusOK {
			t.Fatalf("limit: %d %v", st, body)
		}
		const x, y, z = "79166660006", "79167770007", "79168880008"
		for _, c := range []string{x, z} {
			e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, c, "Клиент", "Москва")
		}
		e.Eventually("X and Z wrote", func() bool { return len(e.Messages(ch)) == 2 })
		reply := func(to string) string {
			st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": to, "text": "Ответ"})
			if st != http.StatusAccepted {
				t.Fatalf("reply to %s: %d %v", to, st, body)
			}
			return body["id"].(string)
		}
		reply(x)
		e.Eventually("the reply to X went out", func() bool { return len(textsTo(e, "+"+x))+len(textsTo(e, x)) == 1 })
		// The hour's one dialog is used: a user's reply to Z waits.
		toZ := reply(z)
		e.WaitIdle()
		if _, m := e.Do("GET", "/api/v1/messages/"+toZ, nil); m["status"] != "queued" || m["held_until"] == nil {
			t.Fatalf("the reply to a second new customer was not held: %v", m)
		}
		// Y has to choose: the menu goes out all the same, uncounted.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, y, "Юлия", "Добрый вечер")
		e.Eventually("menu to Y", func() bool { return len(textsTo(e, y))+len(textsTo(e, "+"+y)) == 1 })
		e.WaitIdle()
		if d := dialogs(t, e, ch); d["this_hour"] != float64(1) || d["waiting"] != float64(1) {
			t.Fatalf("the menu counted as a dialog: %v", d)
		}
	})
}

// Turning branch mode on keeps an existing customer of exactly one of the
// branches' CRMs there (their previous branch) without a menu; a customer
// of several gets the menu.
func TestBranchPreviousCustomersKeepTheirCRM(t *testing.T) {
	apptest.Each(t, branchOpts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		msk, ws := e.InstallBitrix24()
		mskPortal := e.Portal
		kznPortal, kzn := e.InstallBitrix24Portal(kazanMemberID, kazanDomain, kazanAppToken)
		ch := createWAIn(t, e, ws)
		bind := func(in string) {
			if st, body := e.Do("PUT", "/api/v1/integrations/"+in+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
				t.Fatalf("bind %s: %d %v", in, st, body)
			}
		}
		const p, q = "79169990009", "79160001010"
		bind(msk)
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, p, "Пётр", "Первый заказ")
		e.Eventually("P in Moscow", func() bool { return commentsWith(mskPortal, "Первый заказ") == 1 })
		bind(kzn)
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, q, "Ксения", "Я у всех")
		e.Eventually("Q in both", func() bool {
			return commentsWith(mskPortal, "Я у всех") == 1 && commentsWith(kznPortal, "Я у всех") == 1
		})
		branches := []map[string]any{{"integration_id": msk, "name": "Москва"}, {"integration_id": kzn, "name": "Казань"}}
		if st, body := e.Do("PUT", "/api/v1/channels/"+ch+"/routing", map[string]any{"mode": "branch", "branches": branches}); st != http.StatusOK {
			t.Fatalf("routing: %d %v", st, body)
		}
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, p, "Пётр", "Второй заказ")
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, q, "Ксения", "А теперь?")
		e.Eventually("P's second message in Moscow", func() bool { return commentsWith(mskPortal, "Второй заказ") == 1 })
		e.Eventually("menu to Q", func() bool { return len(textsTo(e, q)) == 1 })
		e.WaitIdle()
		if n := len(textsTo(e, p)); n != 0 {
			t.Fatalf("P, a customer of Moscow only, got %d menus", n)
		}
		if st, v := e.Do("GET", "/api/v1/channels/"+ch+"/customers/"+p+"/branch", nil); st != http.StatusOK || v["integration_id"] != msk || v["source"] != "previous" {
			t.Fatalf("P's branch: %d %v", st, v)
		}
		if commentsWith(kznPortal, "Второй заказ") != 0 {
			t.Fatal("P's message reached Kazan")
		}
	})
}
