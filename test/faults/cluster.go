package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for the checks

	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
)

// The simulated accounts: the gateway only checks that the same values
// reach it from both sides, so these need not be anyone's real ones.
const (
	appSecret     = "faults-app-secret"
	adminToken    = "faults-admin-token"
	phoneNumberID = "109283746501928"
	wabaID        = "104857392017465"
	waToken       = "faults-wa-token"
	b24ClientID   = "faults.client"
	b24Secret     = "faults-b24-secret"
	b24MemberID   = "a223c6b3710f85df22e9377d6c4f7553"
	b24AppToken   = "51856fefc120afa4b628cc82d3935cce"
	b24Domain     = "faults.bitrix24.ru"
	secretKey     = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	openLineID    = 1
)

// clusterOptions are what a scenario varies in the gateways' setup.
type clusterOptions struct {
	instances int
	pgAdmin   string        // URL of a database to run CREATE/DROP DATABASE in
	lease     time.Duration // SWITCHBOARD_QUEUE_LEASE
	// b24Rate/b24Burst are the gateway's limit per portal; simRate and
	// simBurst the portal's own leaky bucket, which must never refuse.
	b24Rate, simRate   float64
	b24Burst, simBurst int
	keepDB             bool
	workDir            string
	// crmLatency delays every REST answer of the portal, so that jobs
	// are in flight (claimed) at any moment.
	crmLatency time.Duration
	// metaStatuses makes the Graph simulator post sent/delivered/read
	// webhooks for every message the gateway sends.
	metaStatuses bool
	log          *slog.Logger
}

// gateway is one gateway OS process.
type gateway struct {
	idx  int
	url  string
	addr string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
}

// cluster is the system under test: gateway processes on one fresh
// PostgreSQL database, with the Graph and Bitrix24 simulators in this
// process so that they outlive every fault and can be asked what reached
// them.
type cluster struct {
	opts   clusterOptions
	bin    string
	dbName string
	dbURL  string
	db     *sql.DB

	meta    *metasim.Server
	metaSrv *httptest.Server

	b24    *b24sim.Server
	portal *b24sim.Portal
	// simNanos and simCalls sum the portal simulator's own time on REST
	// calls (without -crm-latency), so a slow mirror step can be told
	// apart from a slow simulator on a starved machine.
	simNanos, simCalls atomic.Int64
	crm                *switchable
	gws                []*gateway
	channel            string
	integ              string
	client             *http.Client

	// vacuums and analyzes count maintenanceLoop's statements.
	vacuums, analyzes atomic.Int64
}

// buildGateway compiles cmd/switchboard once into dir.
func buildGateway(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "switchboard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/switchboard")
	cmd.Dir = moduleRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the gateway: %w", err)
	}
	return bin, nil
}

// moduleRoot is the directory of go.mod above the working directory (the
// command runs from the repository root, its test from test/faults).
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startCluster creates the database, the simulators and the gateways, and
// binds a WhatsApp channel to an Open Line of the simulated portal, so
// that every inbound message is one job that calls the CRM.
func startCluster(ctx context.Context, bin string, o clusterOptions) (*cluster, error) {
	c := &cluster{opts: o, bin: bin, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}}
	if err := c.createDB(ctx); err != nil {
		return nil, err
	}
	addrs := make([]string, o.instances)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return c, err
		}
		addrs[i] = a
	}
	// The public URL (Bitrix24's event handlers, the Graph simulator's
	// webhooks) is the first instance's, which the scenarios never kill:
	// in production it would be the load balancer.
	public := "http://" + addrs[0]

	c.meta = metasim.New(metasim.Options{AppSecret: appSecret, WebhookURL: public + "/webhooks/meta",
		ThroughputPerSecond: -1, PairLimit: metasim.PairLimit{Disabled: true},
		AutoStatuses: o.metaStatuses, StatusDelay: 200 * time.Millisecond, MaxRecorded: 2000})
	c.metaSrv = httptest.NewServer(c.meta)
	c.meta.AddWhatsAppNumber(phoneNumberID, wabaID, "77012345678", waToken)

	c.b24 = b24sim.New(b24sim.Options{ClientID: b24ClientID, ClientSecret: b24Secret,
		RedirectURL: public + "/bitrix24/oauth/callback", LeakRate: o.simRate, LeakBurst: o.simBurst})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/rest/") {
			c.b24.ServeHTTP(w, r)
			return
		}
		time.Sleep(o.crmLatency)
		began := time.Now()
		c.b24.ServeHTTP(w, r)
		c.simNanos.Add(int64(time.Since(began)))
		c.simCalls.Add(1)
	})
	crm, err := newSwitchable(h)
	if err != nil {
		return c, err
	}
	c.crm = crm
	c.b24.SetBaseURL(crm.url)
	c.portal = c.b24.AddPortal(b24sim.PortalOptions{MemberID: b24MemberID, Domain: b24Domain, ApplicationToken: b24AppToken,
		Lines: []b24sim.OpenLine{{ID: openLineID, Name: "WhatsApp"}}})

	for i, a := range addrs {
		dataDir := filepath.Join(o.workDir, fmt.Sprintf("gw%d", i))
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return c, err
		}
		g := &gateway{idx: i, addr: a, url: "http://" + a, env: append(os.Environ(),
			"SWITCHBOARD_HTTP_ADDR="+a,
			"SWITCHBOARD_PUBLIC_URL="+public,
			"SWITCHBOARD_DATA_DIR="+dataDir,
			"SWITCHBOARD_DATABASE_URL="+c.dbURL,
			"SWITCHBOARD_ADMIN_TOKEN="+adminToken,
			"SWITCHBOARD_META_APP_SECRET="+appSecret,
			"SWITCHBOARD_META_VERIFY_TOKEN=faults-verify",
			"SWITCHBOARD_META_GRAPH_URL="+c.metaSrv.URL,
			"SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true",
			"SWITCHBOARD_SECRET_KEY="+secretKey,
			"SWITCHBOARD_BITRIX24_CLIENT_ID="+b24ClientID,
			"SWITCHBOARD_BITRIX24_CLIENT_SECRET="+b24Secret,
			"SWITCHBOARD_BITRIX24_OAUTH_URL="+crm.url,
			"SWITCHBOARD_BITRIX24_RATE="+strconv.FormatFloat(o.b24Rate, 'f', -1, 64),
			"SWITCHBOARD_BITRIX24_BURST="+strconv.Itoa(o.b24Burst),
			"SWITCHBOARD_QUEUE_LEASE="+o.lease.String(),
			"SWITCHBOARD_LOG_LEVEL=warn",
		)}
		lf, err := os.Create(filepath.Join(o.workDir, fmt.Sprintf("gw%d.log", i)))
		if err != nil {
			return c, err
		}
		g.logf = lf
		c.gws = append(c.gws, g)
	}
	// The first instance migrates the fresh database alone; the others
	// then start together.
	if err := c.gws[0].start(ctx, c.bin); err != nil {
		return c, err
	}
	for _, g := range c.gws[1:] {
		if err := g.start(ctx, c.bin); err != nil {
			return c, err
		}
	}
	return c, c.bind(ctx)
}

func (c *cluster) createDB(ctx context.Context) error {
	admin, err := sql.Open("pgx", c.opts.pgAdmin)
	if err != nil {
		return err
	}
	defer admin.Close()
	c.dbName = fmt.Sprintf("faults_%d_%d", os.Getpid(), time.Now().Unix())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+c.dbName); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(c.opts.pgAdmin)
	if err != nil {
		return err
	}
	u.Path = "/" + c.dbName
	c.dbURL = u.String()
	c.db, err = sql.Open("pgx", c.dbURL)
	if err != nil {
		return err
	}
	c.db.SetMaxOpenConns(4)
	return nil
}

// stop kills what is left and drops the database unless kept.
func (c *cluster) stop() {
	for _, g := range c.gws {
		g.kill(syscall.SIGTERM)
		g.logf.Close()
	}
	if c.metaSrv != nil {
		c.metaSrv.Close()
		c.meta.Close()
	}
	if c.crm != nil {
		c.crm.down()
		c.b24.Close()
	}
	if c.db != nil {
		c.db.Close()
	}
	if c.dbName == "" || c.opts.keepDB {
		if c.dbName != "" {
			c.opts.log.Info("database kept", "url", c.dbURL)
		}
		return
	}
	admin, err := sql.Open("pgx", c.opts.pgAdmin)
	if err != nil {
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+c.dbName+" WITH (FORCE)"); err != nil {
		c.opts.log.Warn("drop database", "name", c.dbName, "err", err)
	}
}

func (g *gateway) start(ctx context.Context, bin string) error {
	cmd := exec.Command(bin)
	cmd.Env, cmd.Stdout, cmd.Stderr = g.env, g.logf, g.logf
	if err := cmd.Start(); err != nil {
		return err
	}
	g.cmd, g.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(g.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			return fmt.Errorf("gateway %d exited during start (see %s)", g.idx, g.logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if st, _ := probe(g.url + "/readyz"); st == http.StatusOK {
			return nil
		}
	}
	return fmt.Errorf("gateway %d not ready after 60s", g.idx)
}

func (g *gateway) alive() bool {
	if g.done == nil {
		return false
	}
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

func (g *gateway) pid() int {
	if g.cmd == nil || g.cmd.Process == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// kill sends sig and waits for the process to go (SIGKILL after 20 s).
func (g *gateway) kill(sig syscall.Signal) {
	if !g.alive() {
		return
	}
	g.cmd.Process.Signal(sig)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
	}
}

// probe GETs u and returns its status (0 when unreachable).
func probe(u string) (int, error) {
	cl := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := cl.Get(u)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// api calls the admin API of instance 0.
func (c *cluster) api(ctx context.Context, method, path string, body any) (int, map[string]any, error) {
	return c.apiOn(ctx, c.gws[0], method, path, body)
}

func (c *cluster) apiOn(ctx context.Context, g *gateway, method, path string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out, nil
}

// bind installs the app on the portal, creates the WhatsApp channel and
// binds it to the portal's Open Line, then waits until the line is active.
func (c *cluster) bind(ctx context.Context) error {
	if st, err := c.b24.PostInstallEvent(ctx, b24MemberID, c.gws[0].url+"/bitrix24/install", "ru"); err != nil || st != http.StatusOK {
		return fmt.Errorf("install on the portal: %d %v", st, err)
	}
	st, list, err := c.api(ctx, "GET", "/api/v1/integrations", nil)
	if err != nil || st != http.StatusOK {
		return fmt.Errorf("list integrations: %d %v", st, err)
	}
	data, _ := list["data"].([]any)
	if len(data) == 0 {
		return errors.New("no integration after the install")
	}
	in, _ := data[0].(map[string]any)
	c.integ, _ = in["id"].(string)
	ws, _ := in["workspace_id"].(string)
	st, body, err := c.api(ctx, "POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Faults", "workspace_id": ws,
		"phone_number_id": phoneNumberID, "waba_id": wabaID, "access_token": waToken})
	if err != nil || st != http.StatusCreated {
		return fmt.Errorf("create channel: %d %v %v", st, body, err)
	}
	c.channel, _ = body["id"].(string)
	// The install's setup (connector registration, event binding) runs
	// from the queue; binding checks the line against the portal.
	deadline := time.Now().Add(60 * time.Second)
	for len(c.portal.Connectors()) == 0 || len(c.portal.Events()) < 6 {
		if time.Now().After(deadline) {
			return errors.New("the install's setup never reached the portal")
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, body, err = c.api(ctx, "PUT", "/api/v1/integrations/"+c.integ+"/channels/"+c.channel,
		map[string]any{"mode": "openlines", "line_id": strconv.Itoa(openLineID)})
	if err != nil || st != http.StatusOK {
		return fmt.Errorf("bind channel: %d %v %v", st, body, err)
	}
	for !c.lineActive() {
		if time.Now().After(deadline) {
			return errors.New("the Open Line was never activated")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (c *cluster) lineActive() bool {
	for _, con := range c.portal.Connectors() {
		if c.portal.ConnectorStatus(con.ID, openLineID).Active {
			return true
		}
	}
	return false
}

// switchable serves the Bitrix24 simulator on a fixed address that can be
// taken down (connections refused) and brought back, as a CRM outage.
type switchable struct {
	h    http.Handler
	addr string
	url  string

	mu  sync.Mutex
	srv *http.Server
}

func newSwitchable(h http.Handler) (*switchable, error) {
	a, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &switchable{h: h, addr: a, url: "http://" + a}
	return s, s.up()
}

func (s *switchable) up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	var (
		ln  net.Listener
		err error
	)
	// The port was ours a moment ago; another process may hold it briefly.
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("bring the CRM simulator back on %s: %w", s.addr, err)
	}
	s.srv = &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return nil
}

// down closes the listener and every open connection.
func (s *switchable) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Close()
	s.srv = nil
}

// rssKB reads a process's resident set from /proc.
func rssKB(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// scrape reads an instance's /metrics into series (name with its labels,
// as printed) → value; nil when the instance does not answer.
func (c *cluster) scrape(ctx context.Context, g *gateway) map[string]float64 {
	req, err := http.NewRequestWithContext(ctx, "GET", g.url+"/metrics", nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	series := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			series[line[:i]] = v
		}
	}
	return series
}

// goroutines reads go_goroutines from an instance's /metrics.
func (c *cluster) goroutines(ctx context.Context, g *gateway) int {
	if v, ok := c.scrape(ctx, g)["go_goroutines"]; ok {
		return int(v)
	}
	return -1
}

// maintenanceLoop stands in for autovacuum on a server that has it off,
// every d until ctx ends: it vacuums and analyzes each table past
// autovacuum's default thresholds (dead rows over 50 + 20% of the live
// ones; changes since the last ANALYZE over 50 + 10%). Without it a long
// run measures a jobs table bloated by hundreds of thousands of dead rows,
// which no server with autovacuum on (the default) would have.
func (c *cluster) maintenanceLoop(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.maintain(ctx); err != nil && ctx.Err() == nil {
				c.opts.log.Warn("vacuum", "err", err)
			}
		}
	}
}

// maintain runs one round of maintenanceLoop and counts what it did.
func (c *cluster) maintain(ctx context.Context) error {
	rows, err := c.db.QueryContext(ctx, `SELECT relname,
		n_dead_tup > 50 + 0.2 * n_live_tup,
		n_mod_since_analyze > 50 + 0.1 * n_live_tup
		FROM pg_stat_user_tables WHERE schemaname = current_schema()`)
	if err != nil {
		return err
	}
	type todo struct {
		table           string
		vacuum, analyze bool
	}
	var work []todo
	for rows.Next() {
		var w todo
		if err := rows.Scan(&w.table, &w.vacuum, &w.analyze); err != nil {
			rows.Close()
			return err
		}
		if w.vacuum || w.analyze {
			work = append(work, w)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, w := range work {
		stmt := "ANALYZE " + pq(w.table)
		if w.vacuum {
			stmt = "VACUUM (ANALYZE) " + pq(w.table)
			c.vacuums.Add(1)
		} else {
			c.analyzes.Add(1)
		}
		if _, err := c.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// pq quotes a table name for a statement.
func pq(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// autovacuumOff asks the server whether autovacuum is off.
func (c *cluster) autovacuumOff(ctx context.Context) bool {
	var v string
	return c.db.QueryRowContext(ctx, "SHOW autovacuum").Scan(&v) == nil && v == "off"
}
