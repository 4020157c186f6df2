package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
)

// echoPair is a WhatsApp channel bound to the portal's Open Line 1 and to
// the amoCRM account in CRM mode with amoCRM's chat connected, as the
// demo binds its number, with one customer who wrote once.
type echoPair struct {
	ch, b24, amo, ws string
	// olChat is the customer's Open Lines chat ("chat<id>"); conv their
	// amojo conversation.
	olChat, conv string
}

func newEchoPair(t *testing.T, e *apptest.Env) *echoPair {
	t.Helper()
	p := &echoPair{}
	p.b24, p.ws = e.InstallBitrix24()
	p.ch = createWAIn(t, e, p.ws)
	bindLine(t, e, p.b24, p.ch, "1")
	addAmoAccount(t, e)
	_, tok := e.Do("POST", "/api/v1/workspaces/"+p.ws+"/tokens", map[string]any{"name": "amo"})
	if st, page := consentCallback(t, e, startConsent(t, e, tok["token"].(string))); st != http.StatusOK {
		t.Fatalf("amoCRM consent: %d %s", st, page)
	}
	e.Eventually("amoCRM account active", func() bool {
		for _, in := range amoIntegrations(t, e) {
			if in["state"] == "active" && in["workspace_id"] == p.ws {
				p.amo = in["id"].(string)
			}
		}
		return p.amo != ""
	})
	e.WaitIdle()
	if st, v := e.Do("PUT", "/api/v1/integrations/"+p.amo+"/channels/"+p.ch, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"}); st != http.StatusOK {
		t.Fatalf("bind to amoCRM: %d %v", st, v)
	}
	amojoConnected(t, e, amoAccount)
	amoSend(t, e, customer, "Анна", "Когда доставка?")
	e.Eventually("the customer's chat in the line", func() bool { return len(e.B24.Line(apptest.B24MemberID, 1).Dialogs()) == 1 })
	p.olChat = "chat" + e.B24.Line(apptest.B24MemberID, 1).Dialogs()[0].IMChatID
	p.conv = amojoChat(t, e, amoAccount, 1).ConversationID
	e.Eventually("the lead's note", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
	e.WaitIdle()
	return p
}

// olEchoes are the system messages in the customer's Open Lines chat that
// hold text.
func (p *echoPair) olEchoes(e *apptest.Env, text string) []string {
	var out []string
	for _, m := range e.Portal.ChatMessages() {
		if m.DialogID == p.olChat && m.System && strings.Contains(m.Message, text) {
			out = append(out, m.Message)
		}
	}
	return out
}

// amoNotes counts the account's notes that hold text.
func amoNotes(e *apptest.Env, text string) int {
	n := 0
	for _, note := range e.Amo.Notes(amoAccount) {
		if strings.Contains(note.Text(), text) {
			n++
		}
	}
	return n
}

// amoNoteWith is the text of the first note holding text.
func amoNoteWith(e *apptest.Env, text string) string {
	for _, note := range e.Amo.Notes(amoAccount) {
		if strings.Contains(note.Text(), text) {
			return note.Text()
		}
	}
	return ""
}

// amojoTexts counts the messages of amoCRM's chat that hold text.
func amojoTexts(e *apptest.Env, text string) int {
	n := 0
	for _, c := range e.Amo.Chats(amoAccount) {
		for _, m := range c.Messages {
			if strings.Contains(m.Text, text) {
				n++
			}
		}
	}
	return n
}

// What a person or an automation tells a customer from one CRM of a
// channel shows in the channel's other CRMs, each in its own place and
// once, and never comes back into the chat it was written in: an amoCRM
// manager's answer in amoCRM's chat is a system message in the customer's
// Open Lines chat; an Open Line operator's answer is a note on the amoCRM
// lead and nothing more in the line; an answer through the API shows in
// both; the amoCRM card's and digital pipeline's show in the line, named.
// Redelivered hooks and events, and a rerun echo job, add nothing.
func TestCRMEchoBetweenBoundCRMs(t *testing.T) {
	opts := amojoOpts
	opts.Bitrix24 = true
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		p := newEchoPair(t, e)
		ctx := context.Background()

		// (a) The amoCRM manager answers in amoCRM's chat.
		const amoText = "Доставим завтра с 10 до 14."
		_, hook, err := e.Amo.ManagerReply(ctx, amoAccount, p.conv, 9000002, amoText)
		if err != nil || hook.Status != http.StatusOK {
			t.Fatalf("amojo hook: %v %+v", err, hook)
		}
		e.Eventually("the amoCRM answer in the Open Line", func() bool { return len(p.olEchoes(e, amoText)) == 1 })
		e.WaitIdle()
		if got := p.olEchoes(e, amoText); got[0] != "Иван Менеджеров (amoCRM): "+amoText {
			t.Fatalf("the echo in the line: %q", got)
		}
		// It was written in amoCRM's chat: not relayed back there (the
		// chat holds the manager's own message only), and noted on the
		// lead as amoCRM notes our messages.
		if n := amojoTexts(e, amoText); n != 1 {
			t.Fatalf("%d messages in amoCRM's chat hold the answer", n)
		}
		if n := amoNotes(e, amoText); n != 1 {
			t.Fatalf("%d notes hold the amoCRM answer", n)
		}
		// (d) amojo posts the hook again: nothing is sent or echoed twice.
		if st := postHook(t, e, hook.URL, hook.Body, hook.Signature); st != http.StatusOK {
			t.Fatalf("redelivered hook: %d", st)
		}
		e.WaitIdle()
		if got := p.olEchoes(e, amoText); len(got) != 1 || graphTexts(e, amoText) != 1 {
			t.Fatalf("after the redelivered hook: echoes %q, %d sends", got, graphTexts(e, amoText))
		}

		// (b) An Open Line operator answers.
		const opText = "Курьер позвонит за час."
		dlg := e.B24.Line(apptest.B24MemberID, 1).Dialogs()[0]
		if _, err := e.B24.OperatorReply(ctx, apptest.B24MemberID, "1", dlg.ChatID, opText); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the operator's answer noted in amoCRM", func() bool { return amoNotes(e, opText) == 1 })
		e.WaitIdle()
		if got := p.olEchoes(e, opText); len(got) != 0 {
			t.Fatalf("the operator's answer came back into its line: %q", got)
		}
		// The note names the operator and the CRM they wrote in.
		if note := amoNoteWith(e, opText); !strings.Contains(note, "Olga Ivanova (Bitrix24)") {
			t.Fatalf("the operator's answer noted as %q", note)
		}
		if n := amojoTexts(e, opText); n != 0 {
			t.Fatalf("the operator's answer is %d times in amoCRM's chat; CRM mode notes it", n)
		}
		// (d) Bitrix24 posts the event again: one send, one note.
		var again bool
		for _, d := range e.B24.Deliveries() {
			if d.Event == "ONIMCONNECTORMESSAGEADD" && strings.Contains(d.Body, "%D0%9A%D1%83%D1%80%D1%8C%D0%B5%D1%80") {
				if st, err := postForm(d.Handler, d.Body); err != nil || st != http.StatusOK {
					t.Fatalf("redelivered event: %d %v", st, err)
				}
				again = true
			}
		}
		if !again {
			t.Fatal("the operator's event was not among the portal's deliveries")
		}
		e.WaitIdle()
		if graphTexts(e, opText) != 1 || amoNotes(e, opText) != 1 || len(p.olEchoes(e, opText)) != 0 {
			t.Fatalf("after the redelivered event: %d sends, %d notes, %d echoes", graphTexts(e, opText), amoNotes(e, opText), len(p.olEchoes(e, opText)))
		}

		// (c) An answer through the API (the cabinet's shared chat sends
		// the same way) shows in both.
		const apiText = "Заказ передан курьеру."
		if st, v := e.Do("POST", "/api/v1/channels/"+p.ch+"/messages", map[string]any{"to": customer, "text": apiText}); st >= 300 {
			t.Fatalf("API send: %d %v", st, v)
		}
		e.Eventually("the API answer in both", func() bool { return len(p.olEchoes(e, apiText)) == 1 && amoNotes(e, apiText) == 1 })
		e.WaitIdle()
		if got := p.olEchoes(e, apiText); got[0] != "Switchboard: "+apiText {
			t.Fatalf("the API answer's echo: %q", got)
		}
		// (d) The queue runs an echo job again (its worker died before
		// recording the outcome): the line gets nothing twice.
		var apiMsg string
		for _, m := range outbound(e, p.ch) {
			if m["text"] == apiText {
				apiMsg = m["id"].(string)
			}
		}
		b, err := e.App.Store.BindingOf(ctx, p.b24, p.ch)
		if err != nil {
			t.Fatal(err)
		}
		err = e.App.Store.Tx(ctx, func(tx *gorm.DB) error {
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: routing.JobEcho, WorkspaceID: p.ws,
				Payload: map[string]string{"binding_id": b.ID, "message_id": apiMsg}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		e.App.Queue.Notify()
		e.WaitIdle()
		if got := p.olEchoes(e, apiText); len(got) != 1 {
			t.Fatalf("after a rerun: %q", got)
		}
		// The amoCRM card window and the digital pipeline send as amoCRM's
		// (SendAsManager) outside its chat: the line names the manager, or
		// amoCRM's automation; amoCRM's chat gets neither.
		const cardText, dpText = "Счёт отправлен на почту.", "Ваш заказ собран."
		in, _ := storedAmo(t, e, p.amo)
		for user, text := range map[string]string{"9000002": cardText, "": dpText} {
			if _, err := e.App.AmoCRM.SendAsManager(ctx, in, user, p.ch, messaging.SendRequest{To: customer, Text: text}, nil); err != nil {
				t.Fatal(err)
			}
		}
		e.Eventually("the card's and the pipeline's answers in the line", func() bool {
			return len(p.olEchoes(e, cardText)) == 1 && len(p.olEchoes(e, dpText)) == 1
		})
		e.WaitIdle()
		if card, dp := p.olEchoes(e, cardText), p.olEchoes(e, dpText); card[0] != "Иван Менеджеров (amoCRM): "+cardText || dp[0] != "Автоматизация amoCRM: "+dpText {
			t.Fatalf("echoes of the card %q and the pipeline %q", card, dp)
		}
		if amojoTexts(e, cardText)+amojoTexts(e, dpText) != 0 {
			t.Fatal("amoCRM's own card or pipeline message was relayed into its chat")
		}
		// Every answer reached the customer once.
		for _, text := range []string{amoText, opText, apiText, cardText, dpText} {
			if n := graphTexts(e, text); n != 1 {
				t.Fatalf("%q sent %d times", text, n)
			}
		}
	})
}

// postForm posts a form body as Bitrix24's event queue does.
func postForm(url, body string) (int, error) {
	resp, err := http.Post(url, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
