package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// BenchmarkBitrix24CallsPer100Messages counts the REST calls the gateway
// makes to mirror 100 inbound WhatsApp messages (10 customers × 10
// messages, arriving as a burst) into an Open Line, with the router's
// batching on and off. The figure that matters is calls/100msgs.
func BenchmarkBitrix24CallsPer100Messages(b *testing.B) {
	for _, batch := range []bool{true, false} {
		b.Run(fmt.Sprintf("batch=%v", batch), func(b *testing.B) {
			var calls int
			for i := 0; i < b.N; i++ {
				// The portal's rate limit is off: this counts calls, not waits.
				e := apptest.Start(b, apptest.Options{Bitrix24: true, NoStart: true, B24: func(o *b24sim.Options) { o.LeakRate = -1 }})
				e.App.Router.Batch = batch
				if err := e.App.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				integ, ws := e.InstallBitrix24()
				ch := createWAInB(b, e, ws)
				st, _ := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "openlines", "line_id": "1"})
				if st != 200 {
					b.Fatal("bind failed")
				}
				e.Eventually("line active", func() bool { return e.Portal.ConnectorStatus("switchboard_whatsapp", 1).Active })
				before := len(e.B24.Requests())
				for m := 0; m < 10; m++ {
					for c := 0; c < 10; c++ {
						e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, fmt.Sprintf("7916000%04d", c), "Клиент", fmt.Sprintf("сообщение %d", m))
					}
				}
				// Unbatched, 100 calls at the client's 2 calls a second take ~30 s.
				e.EventuallyWithin(2*time.Minute, "100 messages in the line", func() bool {
					n := 0
					for _, msg := range e.B24.Line(apptest.B24MemberID, 1).Messages() {
						if msg.Direction == "in" {
							n++
						}
					}
					return n == 100
				})
				calls += len(e.B24.Requests()) - before
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/100msgs")
		})
	}
}

func createWAInB(b *testing.B, e *apptest.Env, ws string) string {
	st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Продажи", "workspace_id": ws,
		"phone_number_id": apptest.PhoneNumberID, "waba_id": apptest.WabaID, "access_token": apptest.WAToken})
	if st != 201 {
		b.Fatalf("channel: %d %v", st, body)
	}
	return body["id"].(string)
}
