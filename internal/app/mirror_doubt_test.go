package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// TestOpenLineNotResentAfterLostAnswer: Bitrix24 takes a customer's
// message into the Open Line and its answer is lost (a 500 after the
// work, as a portal timing out after committing). The retry asks the
// line for the message first (imconnector.update.messages), finds it and
// does not send it again: the operator sees it once. A later message goes
// as usual, once.
func TestOpenLineNotResentAfterLostAnswer(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		e.B24.FailAfterNext(apptest.B24MemberID, "imconnector.send.messages", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error")
		ctx := context.Background()
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Первое сообщение"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the first message in the line", func() bool { return len(inboundOnLine(e, 1)) >= 1 })
		// The failed call's job is retried after its backoff.
		e.Eventually("the retry done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = 'crm.mirror'").Scan(&jobs)
			return jobs == 0
		})
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Второе сообщение"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the second message in the line", func() bool { return len(inboundOnLine(e, 1)) >= 2 })
		e.WaitIdle()
		count := map[string]int{}
		for _, m := range inboundOnLine(e, 1) {
			count[m.Text]++
		}
		if count["Первое сообщение"] != 1 || count["Второе сообщение"] != 1 || len(count) != 2 {
			t.Fatalf("the line has %v; want each message once", count)
		}
		if n := len(e.B24.Calls("imconnector.send.messages")); n != 2 {
			t.Fatalf("%d send.messages calls; want the lost one and the second message's", n)
		}
		if len(e.B24.Calls("imconnector.update.messages")) == 0 {
			t.Fatal("the retry did not look the message up in the line")
		}
	})
}
