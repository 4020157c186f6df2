package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// An operator's file whose link answers 404 never holds up the portal:
// the message goes out without it, the chat is told why, and an ordinary
// reply sent right after reaches the customer at once (issue 6, S4).
func TestBitrix24BrokenFileLinkDoesNotBlockReplies(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		bindLine(t, e, integ, createWAIn(t, e, ws), "1")
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Пришлите счёт"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("message in the line", func() bool { return len(inboundOnLine(e, 1)) == 1 })
		in := inboundOnLine(e, 1)[0]

		gone := e.B24URL + "/rest/download.json?token=disk%7C999%7Cgone"
		if _, err := e.B24.OperatorReply(context.Background(), apptest.B24MemberID, "1", in.ChatID, "Вот счёт",
			b24sim.File{Name: "счёт.pdf", Mime: "application/pdf", DownloadLink: gone, Link: gone}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.B24.OperatorReply(context.Background(), apptest.B24MemberID, "1", in.ChatID, "Что-нибудь ещё?"); err != nil {
			t.Fatal(err)
		}
		path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
		texts := func() []string {
			var out []string
			for _, r := range graphSends(e.Sim, path) {
				var b struct {
					Text struct {
						Body string `json:"body"`
					} `json:"text"`
				}
				if json.Unmarshal(r.Body, &b) == nil {
					out = append(out, b.Text.Body)
				}
			}
			return out
		}
		// Eventually's limit is far below the first retry's backoff, so
		// this cannot pass by waiting the broken file out.
		e.Eventually("both replies reach the customer", func() bool {
			got := strings.Join(texts(), "|")
			return strings.Contains(got, "Вот счёт") && strings.Contains(got, "Что-нибудь ещё?")
		})
		e.Eventually("the file's failure is written into the chat", func() bool {
			for _, m := range e.Portal.ChatMessages() {
				if m.DialogID == "chat"+in.IMChatID && strings.Contains(m.Message, "счёт.pdf") && strings.Contains(m.Message, "404") {
					return true
				}
			}
			return false
		})
		if n := len(texts()); n != 2 {
			t.Fatalf("%d sends, want the two texts: %v", n, texts())
		}
	})
}
