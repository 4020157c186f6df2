package app_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
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

// The test binary doubles as a second gateway process (and as a bare
// assigner process): TestOwnersChildProcess runs one when the parent sets
// childEnv, and skips otherwise.
const (
	childEnv       = "OWNERS_TEST_CHILD"
	childDBEnv     = "OWNERS_TEST_CHILD_DB"
	childDataEnv   = "OWNERS_TEST_CHILD_DATA"
	childScopeEnv  = "OWNERS_TEST_CHILD_SCOPE"
	childSecretKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// ownerWeights are the two-process test's group: weights 1, 1, 2, 1.
var ownerWeights = []routing.WeightedUser{{UserID: "27", Weight: 1}, {UserID: "3", Weight: 1}, {UserID: "4", Weight: 2}, {UserID: "5", Weight: 1}}

// TestOwnersChildProcess is not a test of its own: it is the body of a
// child process of TestOwnersTwoProcesses.
func TestOwnersChildProcess(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "gateway":
		runChildGateway(t)
	case "assign":
		runChildAssigner(t)
	default:
		t.Skip("runs only as a child process of TestOwnersTwoProcesses")
	}
}

// runChildGateway runs a whole gateway on the configuration in the
// environment until its standard input closes (the parent ends it, or
// dies). It prints "LISTEN addr" once it serves.
func runChildGateway(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.DataDir, cfg.LogLevel = os.Getenv(childDBEnv), os.Getenv(childDataEnv), "warn"
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, "child gateway:", err)
		}
	}()
	fmt.Printf("LISTEN %s\n", ln.Addr())
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "child gateway: stdin:", err)
	}
	stop, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(stop); err != nil {
		fmt.Fprintln(os.Stderr, "child gateway: shutdown:", err)
	}
	a.Close(stop)
}

// runChildAssigner waits for "GO" on standard input, then asks for the
// owner of customers c0…c199 of one rotation, racing its twin process,
// and prints "DONE fresh" with how many of them this process picked.
func runChildAssigner(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, os.Getenv(childDBEnv), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// No secret is read: owners only.
	st := store.New(db, nil)
	fmt.Println("READY")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "GO" {
		t.Fatalf("no GO: %q %v", line, err)
	}
	fresh := 0
	for i := range 200 {
		_, picked, err := routing.AssignRoundRobin(ctx, st, os.Getenv(childScopeEnv), fmt.Sprintf("c%d", i), ownerWeights, nil)
		if err != nil {
			t.Fatal(err)
		}
		if picked {
			fresh++
		}
	}
	fmt.Printf("DONE %d\n", fresh)
}

// child is a running child process of the test binary.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *bytes.Buffer
}

func startChild(t *testing.T, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOwnersChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(out), stderr: &bytes.Buffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			// Ours, by its pid: a child that did not stop on EOF.
			if err := cmd.Process.Kill(); err != nil {
				t.Logf("kill child %d: %v", cmd.Process.Pid, err)
			}
			<-done
		}
		if t.Failed() {
			t.Logf("child %d stderr:\n%s", cmd.Process.Pid, c.stderr.String())
		}
	})
	return c
}

// expect reads the child's output until a line with prefix, and returns
// the rest of that line.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	var seen []string
	for c.lines.Scan() {
		if rest, ok := strings.CutPrefix(c.lines.Text(), prefix); ok {
			return strings.TrimSpace(rest)
		}
		seen = append(seen, c.lines.Text())
	}
	t.Fatalf("child ended before %q: %v\n%s\n%s", prefix, c.lines.Err(), strings.Join(seen, "\n"), c.stderr.String())
	return ""
}

// TestOwnersTwoProcesses: two gateway processes on one PostgreSQL, fed
// 200 new customers' webhooks alternately and at once, share them out by
// the weights 1, 1, 2, 1 exactly, assign no customer twice, and give each
// customer's deal in the CRM the owner the database recorded. Then two
// bare processes race on one rotation for the same 200 customers, to put
// the rotation's row lock itself under contention between processes.
func TestOwnersTwoProcesses(t *testing.T) {
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skip(storetest.EnvURL + " is not set: two processes need one PostgreSQL")
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ctx := context.Background()
	dbURL := storetest.URL(t)
	// The portal's rate limit is not what is tested: with Bitrix24's 2
	// calls a second, 400 calls would take minutes.
	e := apptest.Start(t, apptest.Options{Bitrix24: true, DatabaseURL: dbURL,
		B24:    func(o *b24sim.Options) { o.LeakRate = -1 },
		Config: func(c *config.Config) { c.Bitrix24Rate, c.Bitrix24Burst = 100, 100 }})
	integ, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)
	seedCRMUsers(t, e, integ, []string{"1", "27", "3", "4", "5"})
	users := make([]map[string]any, len(ownerWeights))
	for i, u := range ownerWeights {
		users[i] = map[string]any{"user_id": u.UserID, "weight": u.Weight}
	}
	bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "deal", "owner": map[string]any{"strategy": "round_robin", "users": users}})
	bid := bindingID(t, e, integ, ch)

	// The second gateway: the same database, secrets and simulators.
	second := startChild(t, childEnv+"=gateway", childDBEnv+"="+dbURL, childDataEnv+"="+t.TempDir(),
		"SWITCHBOARD_ADMIN_TOKEN="+apptest.AdminToken, "SWITCHBOARD_META_APP_SECRET="+apptest.AppSecret,
		"SWITCHBOARD_META_VERIFY_TOKEN="+apptest.VerifyToken, "SWITCHBOARD_META_GRAPH_URL="+e.SimURL,
		"SWITCHBOARD_PUBLIC_URL="+e.URL, "SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true", "SWITCHBOARD_SECRET_KEY="+childSecretKey,
		"SWITCHBOARD_BITRIX24_CLIENT_ID="+apptest.B24ClientID, "SWITCHBOARD_BITRIX24_CLIENT_SECRET="+apptest.B24Secret,
		"SWITCHBOARD_BITRIX24_OAUTH_URL="+e.B24URL, "SWITCHBOARD_BITRIX24_RATE=100", "SWITCHBOARD_BITRIX24_BURST=100")
	gateways := []string{e.URL, "http://" + second.expect(t, "LISTEN ")}

	const n = 200
	accepted := make([]int, len(gateways))
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				body, _, err := metasim.BuildWhatsAppWebhook(metasim.WhatsAppInbound{WABAID: apptest.WabaID, PhoneNumberID: apptest.PhoneNumberID,
					DisplayPhone: "77012345678", From: fmt.Sprintf("7917%07d", i), Name: fmt.Sprintf("Клиент %d", i), Time: time.Now(), Text: "Здравствуйте"})
				if err != nil {
					t.Error(err)
					continue
				}
				gw := i % len(gateways)
				req, _ := http.NewRequest("POST", gateways[gw]+"/webhooks/meta", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Hub-Signature-256", apptest.Sign(body))
				resp, err := e.Client.Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("webhook %d to gateway %d: %d", i, gw, resp.StatusCode)
					continue
				}
				mu.Lock()
				accepted[gw]++
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	e.Eventually("a deal with its comment per customer", func() bool {
		return len(e.Portal.Deals()) >= n && len(e.Portal.TimelineComments()) >= n
	})
	e.WaitIdle()

	counts, err := e.App.Store.OwnerCounts(ctx, bid)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"27": 40, "3": 40, "4": 80, "5": 40}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("owners %v, want %v (weights 1, 1, 2, 1 over %d customers)", counts, want, n)
	}
	deals := e.Portal.Deals()
	if len(deals) != n || len(e.Portal.Contacts()) != n || len(e.Portal.TimelineComments()) != n {
		t.Fatalf("%d deals, %d contacts, %d comments for %d customers", len(deals), len(e.Portal.Contacts()), len(e.Portal.TimelineComments()), n)
	}
	byDeal := map[string]store.DialogView{}
	for _, d := range customerDialogs(t, e, integ) {
		byDeal[d.CRMEntityID] = d
	}
	seen := map[string]bool{}
	for _, deal := range deals {
		d, ok := byDeal[deal.Field("ID")]
		if !ok || seen[d.ContactID] {
			t.Fatalf("deal %s: dialog %+v (customer seen before: %v)", deal.Field("ID"), d, seen[d.ContactID])
		}
		seen[d.ContactID] = true
		owner, err := e.App.Store.OwnerOf(ctx, bid, d.ContactID)
		if err != nil || deal.Field("ASSIGNED_BY_ID") != owner || d.OwnerUserID != owner {
			t.Fatalf("deal %s assigned to %s, dialog owner %s, recorded owner %s %v", deal.Field("ID"), deal.Field("ASSIGNED_BY_ID"), d.OwnerUserID, owner, err)
		}
	}
	t.Logf("two gateways: webhooks accepted %v; owners %v", accepted, counts)

	// Two bare processes race for the same 200 customers of one rotation.
	scope := "race:" + bid
	racers := []*child{
		startChild(t, childEnv+"=assign", childDBEnv+"="+dbURL, childScopeEnv+"="+scope),
		startChild(t, childEnv+"=assign", childDBEnv+"="+dbURL, childScopeEnv+"="+scope),
	}
	for _, r := range racers {
		r.expect(t, "READY")
	}
	for _, r := range racers {
		if _, err := io.WriteString(r.stdin, "GO\n"); err != nil {
			t.Fatal(err)
		}
	}
	var picked []string
	total := 0
	for _, r := range racers {
		got := r.expect(t, "DONE ")
		picked = append(picked, got)
		var k int
		fmt.Sscan(got, &k)
		total += k
	}
	counts, err = e.App.Store.OwnerCounts(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if total != n || fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("racing processes picked %v (sum %d, want %d: each customer once), owners %v, want %v", picked, total, n, counts, want)
	}
	t.Logf("two racing assigners: picks per process %v; owners %v", picked, counts)
}
