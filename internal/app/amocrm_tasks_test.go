package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/crm/amocrm"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
)

// amoTask returns the account's task with this id.
func amoTask(t *testing.T, e *apptest.Env, id int) amosim.Task {
	t.Helper()
	for _, tk := range e.Amo.Tasks(amoAccount) {
		if tk.ID == id {
			return tk
		}
	}
	t.Fatalf("no task %d", id)
	return amosim.Task{}
}

// amoOurTasks are the tasks the gateway made (by the installing user's
// token), oldest first.
func amoOurTasks(e *apptest.Env, foreign int) []amosim.Task {
	var out []amosim.Task
	for _, tk := range e.Amo.Tasks(amoAccount) {
		if tk.ID != foreign {
			out = append(out, tk)
		}
	}
	return out
}

// amoManagerReply answers the card fixture's customer as an amoCRM user,
// the way amojo and the digital pipeline send (SendAsManager).
func amoManagerReply(t *testing.T, e *apptest.Env, integ, ch, user, text string) {
	t.Helper()
	in, _ := storedAmo(t, e, integ)
	if _, err := e.App.AmoCRM.SendAsManager(context.Background(), in, user, ch, messaging.SendRequest{To: "79161234567", Text: text}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAmoCRMTasksClosedOnAnswer: the "answer the customer" task the
// gateway made is completed (with a result) once the customer is answered
// from the card window, then, for the next waiting periods, through the
// API and as amojo sends, and withdrawn by "no reply needed"; each
// exactly once, and a task someone made in
// amoCRM on the same lead is left alone. An answer to a customer who does
// not wait closes nothing.
func TestAmoCRMTasksClosedOnAnswer(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		f := newAmoCardFixture(t, e)
		e.Eventually("the waiting customer's task", func() bool { return len(e.Amo.Tasks(amoAccount)) == 1 })
		foreign := e.Amo.PutTask(amoAccount, amosim.Task{Text: "Позвонить клиенту", EntityType: "leads", EntityID: f.lead,
			ResponsibleUserID: amoManagerUser, CompleteTill: 1})
		first := amoOurTasks(e, foreign)[0]
		if first.IsCompleted {
			t.Fatalf("task completed before an answer: %+v", first)
		}

		// 1. The card window.
		st, page := amoCard(t, e, amoManagerUser, "leads", f.lead, "ru")
		if st != http.StatusOK {
			t.Fatalf("card: %d", st)
		}
		st, page = amoCardSend(t, e, url.Values{"sess": {sessOf(t, page)}, "target": {f.ch + "|+79161234567"}, "text": {"Завтра с 10 до 14."}}, nil)
		if st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
			t.Fatalf("send: %d\n%s", st, page)
		}
		e.Eventually("the task completed", func() bool { return amoTask(t, e, first.ID).IsCompleted })
		e.WaitIdle()
		if tk := amoTask(t, e, first.ID); tk.Completions != 1 || tk.ResultText != "Клиенту ответили" {
			t.Fatalf("completed task %+v", tk)
		}
		if tk := amoTask(t, e, foreign); tk.IsCompleted || tk.Completions != 0 {
			t.Fatalf("a task the gateway did not make was closed: %+v", tk)
		}
		// A second answer: the customer no longer waits, nothing to close.
		patches := e.Amo.Counts(amoAccount).ByRoute["PATCH /api/v4/tasks"]
		if st, v := e.Do("POST", "/api/v1/channels/"+f.ch+"/messages", map[string]any{"to": "79161234567", "text": "И ещё"}); st >= 300 {
			t.Fatalf("API send: %d %v", st, v)
		}
		e.WaitIdle()
		if n := e.Amo.Counts(amoAccount).ByRoute["PATCH /api/v4/tasks"]; n != patches {
			t.Fatalf("an answer to nobody waiting patched tasks (%d → %d)", patches, n)
		}

		// 2. The customer waits again: a new task, closed by an API answer.
		amoSend(t, e, "79161234567", "Анна", "А можно к 9?")
		e.Eventually("the second task", func() bool { return len(amoOurTasks(e, foreign)) == 2 })
		second := amoOurTasks(e, foreign)[1]
		if second.IsCompleted {
			t.Fatal("the new period's task was closed by the old answer")
		}
		if st, v := e.Do("POST", "/api/v1/channels/"+f.ch+"/messages", map[string]any{"to": "79161234567", "text": "Можно"}); st >= 300 {
			t.Fatalf("API send: %d %v", st, v)
		}
		e.Eventually("the second task completed", func() bool { return amoTask(t, e, second.ID).IsCompleted })

		// 3. Again, answered the way amojo (and the digital pipeline) send.
		amoSend(t, e, "79161234567", "Анна", "Спасибо, а оплата?")
		e.Eventually("the third task", func() bool { return len(amoOurTasks(e, foreign)) == 3 })
		third := amoOurTasks(e, foreign)[2]
		amoManagerReply(t, e, f.integ, f.ch, "9000002", "Картой при получении")
		e.Eventually("the third task completed", func() bool { return amoTask(t, e, third.ID).IsCompleted })

		// 4. "No reply needed" withdraws the task too, saying so.
		amoSend(t, e, "79161234567", "Анна", "👍 Спасибо!")
		e.Eventually("the fourth task", func() bool { return len(amoOurTasks(e, foreign)) == 4 })
		fourth := amoOurTasks(e, foreign)[3]
		_, list := e.Do("GET", "/api/v1/dialogs?channel_id="+f.ch, nil)
		dialogs, _ := list["data"].([]any)
		if len(dialogs) != 1 {
			t.Fatalf("dialogs %v", list)
		}
		if st, v := e.Do("POST", "/api/v1/dialogs/"+dialogs[0].(map[string]any)["id"].(string)+"/no-reply-needed", nil); st != http.StatusOK {
			t.Fatalf("no reply needed: %d %v", st, v)
		}
		e.Eventually("the fourth task completed", func() bool { return amoTask(t, e, fourth.ID).IsCompleted })
		if tk := amoTask(t, e, fourth.ID); tk.ResultText != "Ответ не требуется" {
			t.Fatalf("fourth task %+v", tk)
		}
		e.WaitIdle()
		for _, tk := range amoOurTasks(e, foreign) {
			if tk.Completions != 1 {
				t.Fatalf("task %d completed %d times", tk.ID, tk.Completions)
			}
		}
		if tk := amoTask(t, e, foreign); tk.IsCompleted {
			t.Fatal("the foreign task was closed")
		}
		var links int64
		if err := e.App.DB.Gorm.Table("crm_links").Where("kind = ?", "open_task").Count(&links).Error; err != nil || links != 0 {
			t.Fatalf("%d task links left (%v)", links, err)
		}
	})
}

// TestAmoCRMTasksFirstResponder: under first responder both group members
// get a task, the escalation adds more; the first answer closes every one
// of them, each once.
func TestAmoCRMTasksFirstResponder(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		id, _, ch := amoBound(t, e, map[string]any{"mode": "crm",
			"owner": map[string]any{"strategy": "first_responder", "users": []map[string]any{{"user_id": "9000001"}, {"user_id": "9000002"}}}})
		amoSend(t, e, "79161234567", "Анна", "Здравствуйте")
		e.Eventually("a task for each member", func() bool { return len(e.Amo.Tasks(amoAccount)) == 2 })
		fireTimer(t, e, id, ch)
		e.WaitIdle()
		ts := e.Amo.Tasks(amoAccount)
		if len(ts) < 3 {
			t.Fatalf("no escalation task: %+v", ts)
		}
		users := map[int]bool{}
		for _, tk := range ts {
			users[tk.ResponsibleUserID] = true
			if tk.IsCompleted {
				t.Fatalf("completed before the answer: %+v", tk)
			}
		}
		if !users[9000001] || !users[9000002] {
			t.Fatalf("tasks %+v", ts)
		}
		amoManagerReply(t, e, id, ch, "9000002", "Добрый день, слушаю")
		e.Eventually("every task completed", func() bool {
			for _, tk := range e.Amo.Tasks(amoAccount) {
				if !tk.IsCompleted {
					return false
				}
			}
			return true
		})
		e.WaitIdle()
		for _, tk := range e.Amo.Tasks(amoAccount) {
			if tk.Completions != 1 {
				t.Fatalf("task %d completed %d times", tk.ID, tk.Completions)
			}
		}
		if n := e.Amo.Counts(amoAccount).ByRoute["PATCH /api/v4/tasks"]; n != 1 {
			t.Fatalf("%d PATCH calls for one answer", n)
		}
	})
}

// TestAmoCRMUnpaidResumes: an account answering 402 shows unpaid with its
// reason, its work waits (the customer's messages are kept), and once it
// is paid the probe brings it back with no reinstall: every message is
// noted, in order.
func TestAmoCRMUnpaidResumes(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		id, ws, _ := amoBound(t, e, map[string]any{"mode": "crm"})
		amoSend(t, e, "79161234567", "Анна", "первое")
		e.Eventually("the first note", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		e.WaitIdle()
		lead := e.Amo.Leads(amoAccount)[0].ID

		e.Amo.SetUnpaid(amoAccount, true)
		amoSend(t, e, "79161234567", "Анна", "второе")
		e.Eventually("the integration shows unpaid", func() bool { return amoState(t, e, id) == "unpaid" })
		var got map[string]any
		for _, in := range amoIntegrations(t, e) {
			if in["id"] == id {
				got = in
			}
		}
		if r, _ := got["state_reason"].(string); !strings.Contains(r, "not paid") {
			t.Fatalf("integration %v", got)
		}
		// The cabinet's integrations page says so, in both languages.
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		for lang, want := range map[string]string{"ru": "аккаунт CRM не оплачен", "en": "CRM account not paid"} {
			v := newVisitor(t, e)
			v.lang = lang
			if st := v.login("owner@example.com", ownerPW); st != http.StatusSeeOther {
				t.Fatalf("sign in: %d", st)
			}
			if st, page := v.get("/integrations"); st != http.StatusOK || !strings.Contains(page, want) || !strings.Contains(page, "not paid (HTTP 402)") {
				t.Fatalf("%s integrations page: %d\n%s", lang, st, page)
			}
		}
		// The widget's settings page says why the pipelines are missing,
		// not that amoCRM never lists them, and asks amoCRM nothing.
		before := e.Amo.Counts(amoAccount).Requests
		if page, _ := openSettings(t, e, amoAdminUser, "ru"); !strings.Contains(page, "интеграция не активна") || strings.Contains(page, "не отдаёт свои списки") {
			t.Fatalf("settings page while unpaid:\n%.1500s", page)
		}
		if n := e.Amo.Counts(amoAccount).Requests; n != before {
			t.Fatalf("the settings page asked an unpaid account %d times", n-before)
		}
		amoSend(t, e, "79161234567", "Анна", "третье")
		e.WaitIdle()
		requests := e.Amo.Counts(amoAccount).Requests
		e.WaitIdle()
		if n := len(e.Amo.Notes(amoAccount)); n != 1 {
			t.Fatalf("%d notes while unpaid", n)
		}
		if amoState(t, e, id) != "unpaid" {
			t.Fatal("state changed while unpaid")
		}
		// Still unpaid: the probe asks once and waits again.
		probe := func() {
			t.Helper()
			if _, err := e.App.Queue.Wake(context.Background(), amocrm.JobPaymentProbe, []string{amocrm.PaymentProbeKey(id)}); err != nil {
				t.Fatal(err)
			}
			e.WaitIdle()
		}
		probe()
		if amoState(t, e, id) != "unpaid" || e.Amo.Counts(amoAccount).Requests != requests+1 {
			t.Fatalf("probe while unpaid: state %s, %d requests after %d", amoState(t, e, id), e.Amo.Counts(amoAccount).Requests, requests)
		}

		e.Amo.SetUnpaid(amoAccount, false)
		probe()
		e.Eventually("every message noted", func() bool { return len(amoNotesOn(e, lead)) == 3 })
		e.WaitIdle()
		if amoState(t, e, id) != "active" {
			t.Fatalf("state %s after paying", amoState(t, e, id))
		}
		for _, in := range amoIntegrations(t, e) {
			if in["id"] == id && in["state_reason"] != nil {
				t.Fatalf("reason kept: %v", in)
			}
		}
		notes := amoNotesOn(e, lead)
		if len(notes) != 3 || len(e.Amo.Leads(amoAccount)) != 1 || !inOrder(strings.Join(notes, "\n"), "первое", "второе", "третье") {
			t.Fatalf("notes %q", notes)
		}
		// The next message goes straight through.
		amoSend(t, e, "79161234567", "Анна", "четвёртое")
		e.Eventually("the fourth note", func() bool { return len(amoNotesOn(e, lead)) == 4 })
	})
}
