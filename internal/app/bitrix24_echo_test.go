package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/crm/bitrix24"
	"github.com/switchboard/switchboard/internal/queue"
)

// A reply a manager writes on the CRM card tab, and a robot's message, to
// a customer whose channel is bound to the portal's Open Line also show in
// that customer's Open Lines chat, once, in the portal's language.
func TestBitrix24TabReplyEchoedToOpenLine(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		e.Eventually("line active", func() bool { return e.Portal.ConnectorStatus("switchboard_whatsapp", 1).Active })
		ctx := context.Background()
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Когда доставка?")
		e.Eventually("the customer's chat in the line", func() bool { return len(e.B24.Line(apptest.B24MemberID, 1).Dialogs()) == 1 })
		chat := "chat" + e.B24.Line(apptest.B24MemberID, 1).Dialogs()[0].IMChatID
		e.WaitIdle()
		contact := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "8 916 123-45-67"}}})
		deal := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Заказ", "CONTACT_ID": contact})
		echoes := func(prefix string) []string {
			var out []string
			for _, m := range e.Portal.ChatMessages() {
				if m.DialogID == chat && m.System && strings.HasPrefix(m.Message, prefix) {
					out = append(out, m.Message)
				}
			}
			return out
		}

		// The first attempt meets a busy portal: the job retries.
		e.B24.FailNext(apptest.B24MemberID, "im.message.add", 1, http.StatusServiceUnavailable, "QUERY_LIMIT_EXCEEDED", "Too many requests")
		_, page := frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, 27), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(deal)+`"}`)
		st, page := submit(t, e, "/bitrix24/tab/send", url.Values{"sess": {sessOf(t, page)}, "target": {ch + "|+79161234567"}, "text": {"Завтра с 10 до 14."}})
		if st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
			t.Fatalf("send from the tab: %d\n%s", st, page)
		}
		path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
		e.Eventually("sent to WhatsApp", func() bool { return len(graphSends(e.Sim, path)) == 1 })
		e.Eventually("echo in the Open Lines chat", func() bool { return len(echoes("Olga Ivanova")) == 1 })
		e.WaitIdle()
		if got := echoes("Olga Ivanova"); len(got) != 1 || got[0] != "Olga Ivanova (карточка CRM): Завтра с 10 до 14." {
			t.Fatalf("echo %q", got)
		}
		if n := len(e.B24.Calls("im.message.add")); n != 2 {
			t.Fatalf("%d im.message.add calls, want the refused one and its retry", n)
		}
		// The queue runs a job again when its worker died before recording
		// the outcome: the rerun writes nothing twice. (The job is the echo
		// job of earlier versions, still run for jobs queued before an
		// upgrade; routing's JobEcho is rerun in TestCRMEchoBetweenBoundCRMs.)
		var msgID string
		for _, m := range e.Messages(ch) {
			if m["direction"] == "out" {
				msgID = m["id"].(string)
			}
		}
		if msgID == "" {
			t.Fatal("the tab's reply is not among the channel's messages")
		}
		err := e.App.Store.Tx(ctx, func(tx *gorm.DB) error {
			_, err := queue.Enqueue(tx, queue.NewJob{Kind: bitrix24.JobOpenLineEcho, WorkspaceID: ws,
				Payload: map[string]string{"integration_id": integ, "message_id": msgID, "user_id": "27"}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		e.App.Queue.Notify()
		e.WaitIdle()
		if got := echoes("Olga Ivanova"); len(got) != 1 {
			t.Fatalf("after a rerun: %q", got)
		}
		// The echo is for operators only: the customer got the reply once.
		if n := len(graphSends(e.Sim, path)); n != 1 {
			t.Fatalf("%d sends to WhatsApp", n)
		}

		// A robot's message is shown too, as the robot's. Its recipient and
		// its channel, both numbers as people type them, are read by the
		// workspace's 8→7 rule.
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Спасибо")
		_, _, err = e.B24.RunRobot(ctx, apptest.B24MemberID, "switchboard_send", []string{"crm", "CCrmDocumentDeal", "DEAL_" + strconv.Itoa(deal)},
			map[string]string{"phone": "тел. 8 916 123-45-67", "channel": "8 701 234 56 78", "text": "Ваш заказ собран."})
		if err != nil {
			t.Fatal(err)
		}
		e.Eventually("robot's echo", func() bool { return len(echoes("Робот CRM")) == 1 })
		if got := echoes("Робот CRM"); got[0] != "Робот CRM: Ваш заказ собран." {
			t.Fatalf("robot echo %q", got)
		}
	})
}
