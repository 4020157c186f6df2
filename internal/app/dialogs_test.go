package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// dialogsOf lists dialogs with the admin token (or the given one),
// following every page.
func dialogsOf(t *testing.T, e *apptest.Env, query string, token ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatal("paging does not end")
		}
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		st, body := e.Do("GET", "/api/v1/dialogs?"+q, nil, token...)
		if st != http.StatusOK {
			t.Fatalf("list dialogs ?%s: %d %v", q, st, body)
		}
		for _, d := range body["data"].([]any) {
			out = append(out, d.(map[string]any))
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
}

// onlyDialog is the one dialog of a channel.
func onlyDialog(t *testing.T, e *apptest.Env, ch string) map[string]any {
	t.Helper()
	ds := dialogsOf(t, e, "channel_id="+ch)
	if len(ds) != 1 {
		t.Fatalf("%d dialogs on the channel, want 1: %v", len(ds), ds)
	}
	return ds[0]
}

// createdAt is when the gateway stored a message: what the dialog's
// times are.
func createdAt(t *testing.T, e *apptest.Env, messageID string) string {
	t.Helper()
	st, m := e.Do("GET", "/api/v1/messages/"+messageID, nil)
	if st != http.StatusOK {
		t.Fatalf("message %s: %d %v", messageID, st, m)
	}
	return m["created_at"].(string)
}

// newestInbound is the id of the channel's newest customer message.
func newestInbound(t *testing.T, e *apptest.Env, ch string) string {
	t.Helper()
	for _, m := range e.Messages(ch) {
		if m["direction"] == "in" {
			return m["id"].(string)
		}
	}
	t.Fatal("no customer message")
	return ""
}

// The path: the customer writes twice, the operator answers
// through the API, the customer writes again, an operator marks it as
// needing no reply; then an Open Lines operator's answer clears it too.
func TestDialogFollowsAConversation(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")

		for _, text := range []string{"Здравствуйте!", "Заказ 4512 ещё в пути?"} {
			if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна Смирнова", text); err != nil {
				t.Fatal(err)
			}
		}
		msgs := e.Messages(ch)
		if len(msgs) != 2 {
			t.Fatalf("%d messages", len(msgs))
		}
		first, second := msgs[1]["id"].(string), msgs[0]["id"].(string)
		d := onlyDialog(t, e, ch)
		cust, _ := d["customer"].(map[string]any)
		if d["unread_count"] != 2.0 || d["waiting"] != true || d["waiting_since"] != createdAt(t, e, first) ||
			d["last_inbound_at"] != createdAt(t, e, second) || d["last_outbound_at"] != nil ||
			d["integration_id"] != integ || d["channel_id"] != ch || d["workspace_id"] != ws || d["owner"] != nil ||
			cust["phone"] != "+79161234567" || cust["name"] != "Анна Смирнова" || cust["id"] != customer {
			t.Fatalf("after two messages: %v", d)
		}
		id := d["id"].(string)

		st, sent := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": customer, "text": "Добрый день! Заказ уже в Алматы."})
		if st != http.StatusAccepted {
			t.Fatalf("reply: %d %v", st, sent)
		}
		_, d = e.Do("GET", "/api/v1/dialogs/"+id, nil)
		if d["unread_count"] != 0.0 || d["waiting"] != false || d["waiting_since"] != nil ||
			d["last_outbound_at"] != createdAt(t, e, sent["id"].(string)) || d["last_message_at"] != d["last_outbound_at"] {
			t.Fatalf("after the operator's answer: %v", d)
		}

		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна Смирнова", "А когда доставят?"); err != nil {
			t.Fatal(err)
		}
		third := newestInbound(t, e, ch)
		_, d = e.Do("GET", "/api/v1/dialogs/"+id, nil)
		if d["unread_count"] != 1.0 || d["waiting"] != true || d["waiting_since"] != createdAt(t, e, third) {
			t.Fatalf("waiting again: %v (first wait began %s)", d, createdAt(t, e, first))
		}
		if onlyDialog(t, e, ch)["id"] != id {
			t.Fatal("a second dialog for the same customer")
		}

		st, d = e.Do("POST", "/api/v1/dialogs/"+id+"/no-reply-needed", nil)
		if st != http.StatusOK || d["waiting"] != false || d["waiting_since"] != nil || d["no_reply_needed_at"] == nil || d["id"] != id {
			t.Fatalf("no-reply-needed: %d %v", st, d)
		}
		if _, again := e.Do("GET", "/api/v1/dialogs/"+id, nil); again["waiting"] != false || again["no_reply_needed_at"] != d["no_reply_needed_at"] {
			t.Fatalf("no-reply-needed did not stick: %v", again)
		}

		// The answer from inside Bitrix24 goes through the same core.
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна Смирнова", "Спасибо, а можно курьером?"); err != nil {
			t.Fatal(err)
		}
		if _, d = e.Do("GET", "/api/v1/dialogs/"+id, nil); d["waiting"] != true {
			t.Fatalf("not waiting after a new message: %v", d)
		}
		var chatID string
		e.Eventually("messages in the open line", func() bool {
			ms := inboundOnLine(e, 1)
			if len(ms) == 4 {
				chatID = ms[3].ChatID
			}
			return len(ms) == 4
		})
		if _, err := e.B24.OperatorReply(ctx, apptest.B24MemberID, "1", chatID, "Да, завтра курьером."); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the operator's answer clears the wait", func() bool {
			_, d = e.Do("GET", "/api/v1/dialogs/"+id, nil)
			return d["waiting"] == false && d["unread_count"] == 0.0
		})

		// A thumbs-up to the answer is counted, and asks for nothing.
		reaction := `{"object":"whatsapp_business_account","entry":[{"id":"` + apptest.WabaID + `","changes":[{"value":{"messaging_product":"whatsapp",
			"metadata":{"display_phone_number":"77012345678","phone_number_id":"` + apptest.PhoneNumberID + `"},
			"contacts":[{"profile":{"name":"Анна Смирнова"},"wa_id":"` + customer + `"}],
			"messages":[{"from":"` + customer + `","id":"wamid.DIALOGREACTION1","timestamp":"1767600000","type":"reaction",
			"reaction":{"message_id":"wamid.ANY","emoji":"👍"}}]},"field":"messages"}]}]}`
		if st, body := e.PostWebhook([]byte(reaction)); st != http.StatusOK {
			t.Fatalf("reaction webhook: %d %v", st, body)
		}
		if _, d = e.Do("GET", "/api/v1/dialogs/"+id, nil); d["waiting"] != false || d["unread_count"] != 1.0 ||
			d["last_inbound_at"] != createdAt(t, e, newestInbound(t, e, ch)) {
			t.Fatalf("after a reaction: %v", d)
		}
	})
}

// Filters, paging and the named refusals of bad ones.
func TestDialogListFiltersAndPages(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		const n = 7
		for i := 0; i < n; i++ {
			if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, fmt.Sprintf("7916000%04d", i), "Клиент", "Здравствуйте"); err != nil {
				t.Fatal(err)
			}
		}
		// Two answered: the first customer and the fourth.
		for _, i := range []int{0, 3} {
			if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": fmt.Sprintf("7916000%04d", i), "text": "Добрый день"}); st != http.StatusAccepted {
				t.Fatalf("reply: %d %v", st, body)
			}
		}
		all := dialogsOf(t, e, "limit=500")
		if len(all) != n {
			t.Fatalf("%d dialogs, want %d", len(all), n)
		}
		// Newest activity first: the last answer, then the one before,
		// then the customers from the last to write.
		want := []string{"79160000003", "79160000000", "79160000006", "79160000005", "79160000004", "79160000002", "79160000001"}
		for i, d := range all {
			if got := d["customer"].(map[string]any)["id"]; got != want[i] {
				t.Fatalf("position %d: %v, want %s (all: %v)", i, got, want[i], all)
			}
		}
		// An owner, as the CRM connector will set it.
		if err := e.App.DB.Gorm.Model(&store.Dialog{}).Where("id = ?", all[2]["id"]).Update("owner_user_id", "15").Error; err != nil {
			t.Fatal(err)
		}

		for _, limit := range []int{1, 2, 3} {
			paged := dialogsOf(t, e, fmt.Sprintf("limit=%d", limit))
			if len(paged) != n {
				t.Fatalf("limit %d: %d dialogs over the pages", limit, len(paged))
			}
			for i := range paged {
				if paged[i]["id"] != all[i]["id"] {
					t.Fatalf("limit %d: pages differ from one list at %d", limit, i)
				}
			}
		}
		st, page := e.Do("GET", "/api/v1/dialogs?limit=3", nil)
		if st != http.StatusOK || len(page["data"].([]any)) != 3 || page["next_cursor"] == nil {
			t.Fatalf("first page of 3: %d %v", st, page)
		}
		if _, page = e.Do("GET", "/api/v1/dialogs", nil); len(page["data"].([]any)) != n || page["next_cursor"] != nil {
			t.Fatalf("default page: %v", page)
		}

		for _, c := range []struct {
			query string
			want  int
		}{
			{"waiting=true", 5},
			{"waiting=false", 2},
			{"owner=15", 1},
			{"owner=15&waiting=true", 1},
			{"owner=15&waiting=false", 0},
			{"owner=none", 6},
			{"owner=16", 0},
			{"integration_id=" + integ, n},
			{"channel_id=" + ch, n},
			{"integration_id=" + store.NewID(), 0},
			{"channel_id=" + store.NewID() + "&waiting=true", 0},
		} {
			if got := len(dialogsOf(t, e, c.query+"&limit=2")); got != c.want {
				t.Errorf("?%s: %d dialogs, want %d", c.query, got, c.want)
			}
		}

		for _, c := range []struct{ query, code string }{
			{"limit=0", "limit_invalid"},
			{"limit=501", "limit_invalid"},
			{"limit=ten", "limit_invalid"},
			{"cursor=abc", "cursor_invalid"},
			{"cursor=" + store.NewID(), "cursor_invalid"},
			{"cursor=12_" + store.NewID() + "x", "cursor_invalid"},
			{"waiting=yes", "waiting_invalid"},
			{"waiting=", "waiting_invalid"},
			{"owner=", "owner_invalid"},
			{"owner=%0A1", "owner_invalid"},
			{"integration_id=1", "integration_id_invalid"},
			{"channel_id=../x", "channel_id_invalid"},
			{"waitng=true", "parameter_unknown"},
		} {
			st, body := e.Do("GET", "/api/v1/dialogs?"+c.query, nil)
			if st != http.StatusBadRequest || errCode(body) != c.code {
				t.Errorf("?%s: %d %v, want 400 %s", c.query, st, body, c.code)
			}
		}
		for _, path := range []string{"/api/v1/dialogs/nope", "/api/v1/dialogs/" + store.NewID()} {
			if st, body := e.Do("GET", path, nil); st != http.StatusNotFound || errCode(body) != "not_found" {
				t.Errorf("GET %s: %d %v", path, st, body)
			}
			if st, body := e.Do("POST", path+"/no-reply-needed", nil); st != http.StatusNotFound || errCode(body) != "not_found" {
				t.Errorf("POST %s/no-reply-needed: %d %v", path, st, body)
			}
		}
	})
}

// A workspace token sees and changes only its workspace's dialogs.
func TestDialogsStayInTheirWorkspace(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		_, tokA := e.Do("POST", "/api/v1/workspaces/"+ws+"/tokens", nil)

		// A second workspace with its own Instagram channel and CRM.
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Филиал"})
		wsB := other["id"].(string)
		_, tokB := e.Do("POST", "/api/v1/workspaces/"+wsB+"/tokens", nil)
		chB := e.CreateInstagram(tokB["token"].(string))
		inB, _, err := e.App.Store.UpsertIntegration(ctx, store.InstallParams{Type: "bitrix24", ExternalID: "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
			Domain: "branch.bitrix24.ru", WorkspaceID: wsB, Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.App.Store.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: wsB, IntegrationID: inB.ID, ChannelID: chB, Mode: "crm", Entity: "lead"}); err != nil {
			t.Fatal(err)
		}
		// B's portal waits for re-authorisation: its conversations go on,
		// its CRM work does not start.
		if err := e.App.Store.SetIntegrationState(ctx, inB.ID, store.IntegrationNeedsReauth, "test"); err != nil {
			t.Fatal(err)
		}

		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Здравствуйте"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Sim.SendInstagramText(ctx, apptest.IGUserID, "1133627508796544", "Привет"); err != nil {
			t.Fatal(err)
		}
		a, b := tokA["token"].(string), tokB["token"].(string)
		listA, listB := dialogsOf(t, e, "limit=10", a), dialogsOf(t, e, "limit=10", b)
		if len(listA) != 1 || listA[0]["channel_id"] != ch || len(listB) != 1 || listB[0]["channel_id"] != chB || listB[0]["integration_id"] != inB.ID {
			t.Fatalf("workspace lists: a %v, b %v", listA, listB)
		}
		var mirrorsB int64
		if err := e.App.DB.Gorm.Table("jobs").Where("kind = ? AND workspace_id = ?", routing.JobMirror, wsB).Count(&mirrorsB).Error; err != nil || mirrorsB != 0 {
			t.Fatalf("%d mirror jobs for a portal that needs re-authorisation (%v)", mirrorsB, err)
		}
		if all := dialogsOf(t, e, "limit=10"); len(all) != 2 {
			t.Fatalf("the operator sees %d dialogs, want 2", len(all))
		}
		idB := listB[0]["id"].(string)
		if st, body := e.Do("GET", "/api/v1/dialogs/"+idB, nil, a); st != http.StatusNotFound {
			t.Fatalf("workspace a read b's dialog: %d %v", st, body)
		}
		if st, body := e.Do("POST", "/api/v1/dialogs/"+idB+"/no-reply-needed", nil, a); st != http.StatusNotFound {
			t.Fatalf("workspace a marked b's dialog: %d %v", st, body)
		}
		if got := dialogsOf(t, e, "integration_id="+inB.ID, a); len(got) != 0 {
			t.Fatalf("workspace a lists b's integration: %v", got)
		}
		if got := dialogsOf(t, e, "channel_id="+chB, a); len(got) != 0 {
			t.Fatalf("workspace a lists b's channel: %v", got)
		}
		if _, d := e.Do("GET", "/api/v1/dialogs/"+idB, nil, b); d["waiting"] != true || d["no_reply_needed_at"] != nil {
			t.Fatalf("b's dialog changed through a: %v", d)
		}
		if st, d := e.Do("POST", "/api/v1/dialogs/"+idB+"/no-reply-needed", nil, b); st != http.StatusOK || d["waiting"] != false {
			t.Fatalf("b marks its own dialog: %d %v", st, d)
		}
	})
}
