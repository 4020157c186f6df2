package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// BenchmarkWebhookParseAndStore measures one signed inbound text webhook
// through the gateway's handler: signature check, parse, one transaction
// (contact upsert + message insert), answer. Every message is new. The
// _bound cases have the channel bound to a CRM integration, so the same
// transaction also queues its mirror job and updates the dialog.
func BenchmarkWebhookParseAndStore(b *testing.B) {
	engines := []bool{false}
	if os.Getenv(storetest.EnvURL) != "" {
		engines = append(engines, true)
	}
	for _, pg := range engines {
		for _, bound := range []bool{false, true} {
			name := "sqlite"
			if pg {
				name = "postgres"
			}
			if bound {
				name += "_bound"
			}
			b.Run(name, func(b *testing.B) { benchWebhook(b, pg, bound) })
		}
	}
}

func benchWebhook(b *testing.B, pg, bound bool) {
	e := apptest.Start(b, apptest.Options{Postgres: pg, NoStart: true})
	ch := e.CreateWhatsApp()
	if bound {
		bindForBench(b, e, ch)
	}
	h := e.App.Handler()
	bodies := make([][]byte, b.N)
	sigs := make([]string, b.N)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"104857392017465","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"77012345678","phone_number_id":"109283746501928"},"contacts":[{"profile":{"name":"\u0410\u043d\u043d\u0430"},"wa_id":"7916%07d"}],"messages":[{"from":"7916%07d","id":"wamid.BENCH%09d","timestamp":"1767600000","type":"text","text":{"body":"\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435"}}]},"field":"messages"}]}]}`, i%5000, i%5000, i))
		sigs[i] = apptest.Sign(bodies[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/meta", bytes.NewReader(bodies[i]))
		req.Header.Set("X-Hub-Signature-256", sigs[i])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// bindForBench binds the channel to a Bitrix24 integration written
// straight into the store: the queue is stopped, so no setup could run.
func bindForBench(b *testing.B, e *apptest.Env, channelID string) {
	ctx := context.Background()
	ch, err := e.App.Store.GetChannel(ctx, store.All, channelID)
	if err != nil {
		b.Fatal(err)
	}
	in, _, err := e.App.Store.UpsertIntegration(ctx, store.InstallParams{Type: "bitrix24", ExternalID: apptest.B24MemberID,
		Domain: apptest.B24Domain, WorkspaceID: ch.WorkspaceID, Secrets: store.IntegrationSecrets{RefreshToken: "r"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.App.Store.PutBinding(ctx, &store.ChannelBinding{WorkspaceID: ch.WorkspaceID, IntegrationID: in.ID,
		ChannelID: ch.ID, Mode: "openlines", LineID: "1"}); err != nil {
		b.Fatal(err)
	}
}
