package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard/switchboard/internal/sandbox/metasim"
)

func TestControlAPI(t *testing.T) {
	var got atomic.Int32
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(metasim.SignatureHeader) != metasim.SignBody("s3cret", body) {
			t.Errorf("bad signature")
		}
		got.Add(1)
	}))
	defer gw.Close()

	cfg, err := parseFlags([]string{"-webhook-url", gw.URL, "-app-secret", "s3cret", "-token", "tok-123", "-auto-statuses=false"})
	if err != nil {
		t.Fatal(err)
	}
	sim := metasim.New(metasim.Options{AppSecret: cfg.appSecret, WebhookURL: cfg.webhookURL})
	defer sim.Close()
	sim.AddWhatsAppNumber(cfg.phoneNumberID, cfg.wabaID, cfg.displayPhone, cfg.token)
	sim.AddInstagramAccount(cfg.igUserID, cfg.igToken)
	srv := httptest.NewServer(newHandler(sim, cfg, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	post := func(path, body string, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if status, body := post("/sim/whatsapp/inbound", `{"from":"+79161234567","name":"Анна","text":"Привет"}`, ""); status != 200 || !strings.Contains(body, `"delivered":true`) {
		t.Fatalf("wa inbound: %d %s", status, body)
	}
	if status, body := post("/sim/instagram/inbound", `{"from":"1133627508796544","text":"Привет"}`, ""); status != 200 || !strings.Contains(body, `"delivered":true`) {
		t.Fatalf("ig inbound: %d %s", status, body)
	}
	if status, body := post("/sim/whatsapp/inbound", `{"from":"","text":""}`, ""); status != 400 {
		t.Errorf("empty inbound: %d %s", status, body)
	}
	if got.Load() != 2 {
		t.Errorf("gateway got %d webhooks", got.Load())
	}
	if status, body := post("/v25.0/"+cfg.phoneNumberID+"/messages", `{"messaging_product":"whatsapp","to":"79161234567","text":{"body":"ok"}}`, "tok-123"); status != 200 {
		t.Fatalf("graph send through the command's mux: %d %s", status, body)
	}
	post("/v25.0/me/messages?access_token=tok-123", `{"recipient":{"id":"1133627508796544"},"message":{"text":"ok"}}`, "")

	resp, err := http.Get(srv.URL + "/sim/requests")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(raw), "tok-123") {
		t.Errorf("/sim/requests leaks the token: %s", raw)
	}
	var views []requestView
	if err := json.Unmarshal(raw, &views); err != nil || len(views) != 2 || views[0].Auth != "Bearer ***" {
		t.Errorf("/sim/requests = %s (%v)", raw, err)
	}

	resp, err = http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"Клиент пишет в WhatsApp", "Customer writes on WhatsApp", cfg.phoneNumberID, "/sim/requests"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// A browser asks every page's host for /favicon.ico; that is not a Graph
// request and must not appear among them.
func TestFaviconIsNotAGraphRequest(t *testing.T) {
	cfg, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	sim := metasim.New(metasim.Options{AppSecret: "s"})
	defer sim.Close()
	srv := httptest.NewServer(newHandler(sim, cfg, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("favicon: %d, want 204", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + "/sim/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "favicon") {
		t.Errorf("the favicon request is listed among the Graph requests: %s", body)
	}
}
