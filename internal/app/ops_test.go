package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

func TestHealthReadyAndMetrics(t *testing.T) {
	e := apptest.Start(t, apptest.Options{NoStart: true})
	e.CreateWhatsApp()
	e.PostWebhook(fixture(t, "wa-inbound-text.json"))
	e.PostWebhook(fixture(t, "wa-inbound-text.json"))
	e.PostWebhookSigned(fixture(t, "wa-inbound-text.json"), "sha256=00")
	e.PostWebhook(fixture(t, "wa-inbound-image.json")) // enqueues a media fetch; workers are stopped

	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`} {
		resp, err := http.Get(e.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(b)
	for _, line := range []string{
		`switchboard_webhooks_received_total{provider="whatsapp",result="stored"} 2`,
		`switchboard_webhooks_received_total{provider="whatsapp",result="duplicate"} 1`,
		`switchboard_webhooks_received_total{provider="meta",result="bad_signature"} 1`,
		`switchboard_messages_total{channel="whatsapp",direction="in",status="received"} 2`,
		`switchboard_queue_depth{state="pending"} 1`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}
