package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// killChildEnv makes TestMirrorKillChild run a gateway instead of skipping.
const killChildEnv = "MIRROR_TEST_KILL_CHILD"

// TestMirrorKillChild is the gateway process of TestMirrorBatchKill9: this
// test binary, run again, configured from the environment, serving until
// it is killed.
func TestMirrorKillChild(t *testing.T) {
	if os.Getenv(killChildEnv) == "" {
		t.Skip("the child process of TestMirrorBatchKill9")
	}
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Fatal(http.ListenAndServe(cfg.HTTPAddr, a.Handler()))
}

// gatewayProc is one gateway process of the kill test.
type gatewayProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// TestMirrorBatchKill9: hourly batches across kill -9 of the gateway, on
// the same database: once while customers' messages arrive (mid-hour),
// once right after Bitrix24 applied the batch of comments and before the
// gateway could record it. Every message the gateway stored is in the
// portal's timelines exactly once. The simulators run in this process, so
// they survive the kills.
func TestMirrorBatchKill9(t *testing.T) {
	if os.Getenv(killChildEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("starts gateway processes")
	}
	t.Run("sqlite", func(t *testing.T) { mirrorKill9(t, "") })
	if os.Getenv(storetest.EnvURL) != "" {
		t.Run("postgres", func(t *testing.T) { mirrorKill9(t, storetest.URL(t)) })
	}
}

func mirrorKill9(t *testing.T, dbURL string) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	gwURL := "http://" + addr

	sim := metasim.New(metasim.Options{AppSecret: apptest.AppSecret, WebhookURL: gwURL + "/webhooks/meta", ThroughputPerSecond: -1})
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()
	defer sim.Close()
	sim.AddWhatsAppNumber(apptest.PhoneNumberID, apptest.WabaID, "77012345678", apptest.WAToken)

	b24 := b24sim.New(b24sim.Options{ClientID: apptest.B24ClientID, ClientSecret: apptest.B24Secret,
		RedirectURL: gwURL + "/bitrix24/oauth/callback", LeakRate: -1})
	defer b24.Close()
	// The hook in front of the portal: armed, it lets the portal apply the
	// next batch of comments and kills the gateway before it hears back.
	var (
		hookMu sync.Mutex
		hook   func()
	)
	b24Srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		hookMu.Lock()
		h := hook
		if h != nil && strings.HasPrefix(r.URL.Path, "/rest/batch") && bytes.Contains(body, []byte("crm.timeline.comment.add")) {
			hook = nil
		} else {
			h = nil
		}
		hookMu.Unlock()
		if h == nil {
			b24.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		b24.ServeHTTP(rec, r)
		h()
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer b24Srv.Close()
	b24.SetBaseURL(b24Srv.URL)
	portal := b24.AddPortal(b24sim.PortalOptions{MemberID: apptest.B24MemberID, Domain: apptest.B24Domain, ApplicationToken: apptest.B24AppToken})

	dataDir := t.TempDir()
	env := append(os.Environ(), killChildEnv+"=1",
		"SWITCHBOARD_HTTP_ADDR="+addr,
		"SWITCHBOARD_PUBLIC_URL="+gwURL,
		"SWITCHBOARD_DATA_DIR="+dataDir,
		"SWITCHBOARD_DATABASE_URL="+dbURL,
		"SWITCHBOARD_ADMIN_TOKEN="+apptest.AdminToken,
		"SWITCHBOARD_META_APP_SECRET="+apptest.AppSecret,
		"SWITCHBOARD_META_VERIFY_TOKEN="+apptest.VerifyToken,
		"SWITCHBOARD_META_GRAPH_URL="+simSrv.URL,
		"SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true",
		"SWITCHBOARD_SECRET_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"SWITCHBOARD_BITRIX24_CLIENT_ID="+apptest.B24ClientID,
		"SWITCHBOARD_BITRIX24_CLIENT_SECRET="+apptest.B24Secret,
		"SWITCHBOARD_BITRIX24_OAUTH_URL="+b24Srv.URL,
	)
	logf, err := os.Create(filepath.Join(dataDir, "children.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("gateway processes' output:\n%s", out)
		}
	})
	start := func() *gatewayProc {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestMirrorKillChild$", "-test.count=1")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &gatewayProc{cmd: cmd, done: make(chan struct{})}
		go func() { cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { p.kill() })
		waitFor(t, "gateway ready", func() bool {
			select {
			case <-p.done:
				t.Fatal("the gateway process exited")
			default:
			}
			resp, err := http.Get(gwURL + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		return p
	}
	api := func(method, path string, body any) (int, map[string]any) {
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, gwURL+path, rd)
		req.Header.Set("Authorization", "Bearer "+apptest.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	gw := start()
	if st, err := b24.PostInstallEvent(ctx, apptest.B24MemberID, gwURL+"/bitrix24/install", "ru"); err != nil || st != http.StatusOK {
		t.Fatalf("install: %d %v", st, err)
	}
	_, list := api("GET", "/api/v1/integrations", nil)
	integ := list["data"].([]any)[0].(map[string]any)["id"].(string)
	ws := list["data"].([]any)[0].(map[string]any)["workspace_id"].(string)
	st, body := api("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Продажи", "workspace_id": ws,
		"phone_number_id": apptest.PhoneNumberID, "waba_id": apptest.WabaID, "access_token": apptest.WAToken})
	if st != http.StatusCreated {
		t.Fatalf("channel: %d %v", st, body)
	}
	ch := body["id"].(string)
	if st, body := api("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
		t.Fatalf("bind: %d %v", st, body)
	}
	// The test's own handle on the database (the bind API sets no mirror
	// mode yet).
	db, err := store.Open(ctx, dbURL, filepath.Join(dataDir, "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st0 := store.New(db, nil)
	b, err := st0.BindingOf(ctx, integ, ch)
	if err != nil {
		t.Fatal(err)
	}
	b.Mirror = routing.MirrorHourly
	if err := st0.PutBinding(ctx, b); err != nil {
		t.Fatal(err)
	}

	acked := map[string]bool{}
	var seq int
	send := func() error {
		seq++
		text := fmt.Sprintf("m%04d.", seq)
		_, err := sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, fmt.Sprintf("7916100%04d", seq%7), "Клиент", text)
		if err == nil {
			acked[text] = true
		}
		return err
	}
	// Mid-hour: 12 messages, then more while the process is killed.
	for range 12 {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	killed := make(chan struct{})
	go func() {
		time.Sleep(30 * time.Millisecond)
		gw.kill()
		close(killed)
	}()
	for i := 0; i < 200; i++ {
		select {
		case <-killed:
			i = 200
		default:
			send()
		}
	}
	<-killed
	t.Logf("%d messages acknowledged before kill -9", len(acked))

	// Restarted on the same database: more messages, then a flush whose
	// batch call is applied by the portal but never answered: the process
	// dies first.
	gw = start()
	for range 8 {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	hookMu.Lock()
	hook = func() { gw.kill() }
	hookMu.Unlock()
	if st, body := api("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil); st != http.StatusOK || body["messages"].(float64) < float64(len(acked)) {
		t.Fatalf("flush: %d %v (acknowledged %d)", st, body, len(acked))
	}
	select {
	case <-gw.done:
	case <-time.After(time.Minute):
		t.Fatal("the portal never got the batch of comments")
	}
	if n := len(portal.TimelineComments()); n == 0 {
		t.Fatal("the batch did not reach the portal before the kill")
	}
	// The dead process's send job waits for its lease to run out (two
	// minutes); the test lets it run out now.
	if err := db.Gorm.Exec(`UPDATE jobs SET state = 'pending', locked_by = '', locked_until = NULL WHERE state = 'running'`).Error; err != nil {
		t.Fatal(err)
	}
	gw = start()
	api("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil)
	waitFor(t, "every batch sent", func() bool {
		var n int64
		db.Gorm.Model(&store.MirrorBatch{}).Where("state <> ?", store.BatchSent).Count(&n)
		return n == 0
	})

	var stored []string
	if err := db.Gorm.Model(&store.Message{}).Where("channel_id = ? AND direction = ?", ch, store.Inbound).Pluck("text", &stored).Error; err != nil {
		t.Fatal(err)
	}
	for text := range acked {
		if !contains(stored, text) {
			t.Errorf("acknowledged %q was not stored", text)
		}
	}
	all := ""
	for _, c := range portal.TimelineComments() {
		all += c.Comment + "\n"
	}
	for _, text := range stored {
		if n := strings.Count(all, text); n != 1 {
			t.Errorf("%q is %d times in the timelines", text, n)
		}
	}
	// The third process found the dead one's batch in the portal.
	if n := len(b24.Calls("crm.timeline.comment.list")); n == 0 {
		t.Error("the resent batch was not looked for in the portal")
	}
	t.Logf("%d messages stored, %d comments", len(stored), len(portal.TimelineComments()))
}

func (p *gatewayProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill() // SIGKILL: no shutdown, no drain
	<-p.done
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
