package app_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
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
	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	// The series tell outsiders about traffic and the Go version: the
	// admin token (no metrics token is configured here) is required.
	if st, _ := get("/metrics", ""); st != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %d", st)
	}
	if st, _ := get("/metrics", "wrong"); st != http.StatusUnauthorized {
		t.Fatalf("/metrics with a wrong token: %d", st)
	}
	st, metrics := get("/metrics", apptest.AdminToken)
	if st != http.StatusOK {
		t.Fatalf("/metrics with the admin token: %d", st)
	}
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

// A misconfigured app secret must show in the log (once, not per forged
// delivery), and the caller learns nothing of our parser.
func TestRefusedWebhooksAreLoggedOnce(t *testing.T) {
	e := apptest.Start(t, apptest.Options{NoStart: true})
	for range 5 {
		if st, _ := e.PostWebhookSigned(fixture(t, "wa-inbound-text.json"), "sha256=00"); st != http.StatusUnauthorized {
			t.Fatalf("bad signature answered %d", st)
		}
	}
	if n := strings.Count(e.Logs(), "X-Hub-Signature-256 does not match"); n != 1 {
		t.Fatalf("bad signatures logged %d times, want once:\n%s", n, e.Logs())
	}
	if strings.Contains(e.Logs(), string(fixture(t, "wa-inbound-text.json")[:40])) {
		t.Fatal("a refused body reached the log")
	}
	resp, err := http.Get(e.URL + "/webhooks/meta?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(e.Logs(), "verification refused") {
		t.Fatalf("verify refusal: %d, logged: %v", resp.StatusCode, strings.Contains(e.Logs(), "verification refused"))
	}
	st, body := e.PostWebhook([]byte(`{"object":"whatsapp_business_account","entry":"nope"}`))
	msg, _ := body["error"].(map[string]any)["message"].(string)
	if st != http.StatusBadRequest || strings.Contains(msg, "json") || strings.Contains(msg, "Go") || strings.Contains(msg, "unmarshal") {
		t.Fatalf("bad payload: %d %q", st, msg)
	}
}

// A client that starts a webhook body and never finishes it is cut off by
// the short body deadline, not held for the uploads' long one.
func TestSlowBodiesAreCutOff(t *testing.T) {
	e := apptest.Start(t, apptest.Options{NoStart: true, Config: func(c *config.Config) {
		c.BodyReadTimeout = 200 * time.Millisecond
	}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhooks/meta HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"object\":")
	// Far longer than the body deadline, far shorter than forever.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the gateway still waits for the rest of the body")
		}
		return // closed by the gateway: cut off
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("a stalled body answered %d", resp.StatusCode)
	}
}
