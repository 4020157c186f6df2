// Command faults runs the gateway as several OS processes on one fresh
// PostgreSQL database under webhook load, injects one fault and checks what
// survived it against the database and the simulators:
//
//	go run ./test/faults -scenario kill9     # kill -9 of one instance mid-run
//	go run ./test/faults -scenario pgrestart # PostgreSQL stopped for -pg-down, then started
//	go run ./test/faults -scenario crmdown   # the Bitrix24 simulator unreachable for -crm-down
//	go run ./test/faults -scenario soak      # steady -rate with replies and statuses for -soak
//
// It builds cmd/switchboard once, creates a database next to -pg (dropped at
// the end unless -keep-db), serves the Graph and Bitrix24 simulators from
// this process (so they outlive every fault and can be asked what reached
// them), starts -instances gateways on their own ports, installs the app on
// the simulated portal and binds a WhatsApp channel to its Open Line, so that
// every inbound message is one CRM job (imconnector.send.messages carrying the
// wamid). The load sends unique signed webhooks round-robin over the
// instances and, like Meta, redelivers each one that is not answered 2xx to
// the next instance after a backoff; every wamid answered 2xx is recorded.
//
// Checks, printed as a table (FAIL rows make the exit status 1): every
// acknowledged wamid stored exactly once; every stored one in the portal's
// Open Line exactly once (nothing sent twice to the CRM); no job left
// pending, running or dead; the portal's rate limit never refused a call;
// per scenario, the dead instance's claimed jobs taken over after their
// lease (kill9), 503s and a not-ready /readyz during the outage and recovery
// without help (pgrestart), work waiting and draining (crmdown), resident
// memory and goroutines per instance sampled each -sample (soak).
//
// pgrestart restarts the machine's PostgreSQL cluster (-pg-cluster) with
// pg_ctlcluster: every other user of it sees the outage too. It refuses to
// run while a `go test -race` process is running (the CI), unless -force.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type config struct {
	scenario    string
	pg          string
	pgCluster   string
	instances   int
	n           int
	concurrency int
	senders     int
	lease       time.Duration
	b24Rate     float64
	b24Burst    int
	simRate     float64
	simBurst    int
	killAfter   float64
	pgDown      time.Duration
	crmDown     time.Duration
	rate        float64
	soak        time.Duration
	sample      time.Duration
	replyRate   float64
	drain       time.Duration
	crmLatency  time.Duration
	analyze     time.Duration
	keepDB      bool
	force       bool
	workDir     string
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		logger.Error("bad flags", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, cfg, os.Stdout, logger)
	if err != nil {
		logger.Error("fault run failed", "err", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("faults", flag.ContinueOnError)
	fs.StringVar(&c.scenario, "scenario", "kill9", "kill9, pgrestart, crmdown or soak")
	fs.StringVar(&c.pg, "pg", envOr("FAULTS_PG", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL URL to create the run's database from (env FAULTS_PG)")
	fs.StringVar(&c.pgCluster, "pg-cluster", "15 main", "pg_ctlcluster version and name of that PostgreSQL, for pgrestart")
	fs.IntVar(&c.instances, "instances", 3, "gateway processes")
	fs.IntVar(&c.n, "n", 3000, "messages (kill9, pgrestart)")
	fs.IntVar(&c.concurrency, "c", 32, "concurrent deliveries")
	fs.IntVar(&c.senders, "senders", 500, "distinct customers")
	fs.DurationVar(&c.lease, "lease", 15*time.Second, "the gateways' SWITCHBOARD_QUEUE_LEASE")
	fs.Float64Var(&c.b24Rate, "b24-rate", 100, "the gateways' SWITCHBOARD_BITRIX24_RATE (REST calls/s per portal)")
	fs.IntVar(&c.b24Burst, "b24-burst", 50, "the gateways' SWITCHBOARD_BITRIX24_BURST")
	fs.Float64Var(&c.simRate, "sim-rate", 0, "the portal's leaky-bucket drain per second (default: -b24-rate)")
	fs.IntVar(&c.simBurst, "sim-burst", 0, "the portal's leaky-bucket size (default: -b24-burst)")
	fs.Float64Var(&c.killAfter, "kill-after", 0.3, "kill9: kill when this fraction of -n is acknowledged")
	fs.DurationVar(&c.pgDown, "pg-down", 10*time.Second, "pgrestart: how long PostgreSQL stays stopped")
	fs.DurationVar(&c.crmDown, "crm-down", 60*time.Second, "crmdown: how long the CRM simulator is unreachable")
	fs.Float64Var(&c.rate, "rate", 0, "messages per second (default: kill9 200, pgrestart 150, crmdown 100, soak 300)")
	fs.DurationVar(&c.soak, "soak", 3*time.Minute, "soak: how long the steady load runs")
	fs.DurationVar(&c.sample, "sample", time.Minute, "soak: how often memory and goroutines are sampled")
	fs.Float64Var(&c.replyRate, "reply-rate", 10, "soak: operator replies per second through the API")
	fs.DurationVar(&c.drain, "drain", 5*time.Minute, "how long to wait for the queue to empty after the load")
	fs.DurationVar(&c.crmLatency, "crm-latency", 50*time.Millisecond, "delay of every portal REST answer, so that jobs are in flight when a fault hits")
	fs.DurationVar(&c.analyze, "analyze", 20*time.Second, "when the server runs with autovacuum off, vacuum and analyze the run's tables past autovacuum's thresholds this often (0: never)")
	fs.BoolVar(&c.keepDB, "keep-db", false, "keep the run's database")
	fs.BoolVar(&c.force, "force", false, "pgrestart even while `go test -race` runs")
	fs.StringVar(&c.workDir, "work-dir", "", "where the binary, data dirs and gateway logs go (default: a temp dir, kept)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch c.scenario {
	case "kill9", "pgrestart", "crmdown", "soak":
	default:
		return c, fmt.Errorf("-scenario must be kill9, pgrestart, crmdown or soak, got %q", c.scenario)
	}
	if c.instances < 1 || (c.scenario == "kill9" && c.instances < 2) {
		return c, errors.New("-instances must be at least 1 (2 for kill9)")
	}
	if c.n < 1 || c.concurrency < 1 || c.senders < 1 {
		return c, errors.New("-n, -c and -senders must be positive")
	}
	if c.simRate == 0 {
		c.simRate = c.b24Rate
	}
	if c.simBurst == 0 {
		c.simBurst = c.b24Burst
	}
	if c.rate == 0 {
		switch c.scenario {
		case "crmdown":
			c.rate = 100
		case "soak":
			c.rate = 300
		case "kill9":
			c.rate = 200 // so that the run outlasts the kill
		}
	}
	return c, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// run executes one scenario and prints its tables; ok is false when a
// check failed.
func run(ctx context.Context, cfg config, out io.Writer, log *slog.Logger) (bool, error) {
	if cfg.scenario == "pgrestart" && !cfg.force {
		if raw, _ := exec.Command("pgrep", "-f", "go test -race").Output(); len(strings.TrimSpace(string(raw))) > 0 {
			return false, errors.New("a `go test -race` run is in progress (the CI): restarting PostgreSQL under it would fail it; try later or -force")
		}
	}
	if cfg.workDir == "" {
		d, err := os.MkdirTemp("", "faults-")
		if err != nil {
			return false, err
		}
		cfg.workDir = d
	}
	log.Info("building the gateway", "dir", cfg.workDir)
	bin, err := buildGateway(ctx, cfg.workDir)
	if err != nil {
		return false, err
	}
	c, err := startCluster(ctx, bin, clusterOptions{
		instances: cfg.instances, pgAdmin: cfg.pg, lease: cfg.lease,
		b24Rate: cfg.b24Rate, b24Burst: cfg.b24Burst, simRate: cfg.simRate, simBurst: cfg.simBurst,
		crmLatency: cfg.crmLatency, keepDB: cfg.keepDB, workDir: cfg.workDir, metaStatuses: cfg.scenario == "soak", log: log,
	})
	if c != nil {
		defer c.stop()
	}
	if err != nil {
		return false, err
	}
	log.Info("cluster ready", "db", c.dbName, "instances", len(c.gws), "channel", c.channel, "logs", cfg.workDir)
	stats := "autovacuum on"
	if c.autovacuumOff(ctx) {
		stats = "autovacuum off on this server, never vacuumed or analyzed"
		if cfg.analyze > 0 {
			stats = fmt.Sprintf("autovacuum off on this server: the harness vacuums and analyzes as autovacuum would, every %s", cfg.analyze)
			actx, cancel := context.WithCancel(ctx)
			defer cancel()
			go c.maintenanceLoop(actx, cfg.analyze)
		}
	}
	host, _ := os.Hostname()
	load1, _ := os.ReadFile("/proc/loadavg")
	header := []row{
		{"machine", fmt.Sprintf("%s, load %s", host, strings.Join(strings.Fields(string(load1))[:3], " ")), nil},
		{"instances", fmt.Sprintf("%d processes on one PostgreSQL (%s), lease %s", len(c.gws), c.dbName, cfg.lease), nil},
		{"statistics", stats, nil},
		{"CRM", fmt.Sprintf("gateway limit %g/s burst %d, portal's %g/s burst %d, %s per REST answer", cfg.b24Rate, cfg.b24Burst, cfg.simRate, cfg.simBurst, cfg.crmLatency), nil},
	}
	var rows []row
	switch cfg.scenario {
	case "kill9":
		rows, err = kill9(ctx, c, cfg, log)
	case "pgrestart":
		rows, err = pgRestart(ctx, c, cfg, log)
	case "crmdown":
		rows, err = crmDown(ctx, c, cfg, log)
	case "soak":
		rows, err = soak(ctx, c, cfg, log)
	}
	if err != nil {
		return false, err
	}
	if n, m := c.vacuums.Load(), c.analyzes.Load(); n+m > 0 {
		rows = append(rows, row{"maintenance", fmt.Sprintf("%d VACUUM (ANALYZE) and %d ANALYZE of single tables, as autovacuum would", n, m), nil})
	}
	return printTable(out, "faults: "+cfg.scenario, append(header, rows...)), nil
}

// common finishes every scenario: wait for the queue to empty, then
// compare acknowledged, stored and CRM-delivered messages.
func common(ctx context.Context, c *cluster, cfg config, l *load) ([]row, error) {
	took, crmTook, drained := c.drain(ctx, cfg.drain)
	drainedAt := time.Now()
	e, err := c.checkExactness(ctx, l.ackedWAMIDs())
	if err != nil {
		return nil, err
	}
	total, _ := l.statusCounts()
	p50, p99 := l.latency()
	busy, dead, err := c.jobsLeft(ctx, drainedAt)
	if err != nil {
		return nil, err
	}
	states, _ := c.jobStates(ctx)
	refused := c.limitRefusals()
	rows := []row{
		{"deliveries (incl. redeliveries)", statusLine(total), nil},
		{"ack rate, latency", fmt.Sprintf("%.0f acks/s, p50 %s, p99 %s", l.ackRate(), p50.Round(time.Millisecond), p99.Round(time.Millisecond)), nil},
		{"given up (never acknowledged)", fmt.Sprint(l.givenUpCount()), yes(l.givenUpCount() == 0)},
	}
	rows = append(rows, e.rows()...)
	customers, disordered, sample, err := c.crmOrder(ctx)
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{"customers whose messages reached the CRM out of stored order",
		fmt.Sprintf("%d of %d %s", disordered, customers, sample), yes(disordered == 0)})
	rows = append(rows,
		row{"after the load: CRM had every stored message", crmWhen(crmTook, cfg.drain), yes(crmTook >= 0)},
		row{"after the load: no job running or due", fmt.Sprintf("%v, after %s", drained, took.Round(100*time.Millisecond)), yes(drained)},
		row{"jobs left pending/running, dead", fmt.Sprintf("%d, %d %s", busy, dead, statusLine(states)), yes(busy == 0 && dead == 0)},
		row{"portal rate-limit refusals", fmt.Sprint(refused), yes(refused == 0)},
		row{"peak CRM REST calls in 1 s", fmt.Sprint(c.peakCallsPerSecond()), nil},
		row{"CRM calls by method", statusLine(c.callsByMethod()), nil},
	)
	return rows, nil
}

// kill9: SIGKILL one instance (the last) once -kill-after of the messages
// are acknowledged; the load goes on over the others.
func kill9(ctx context.Context, c *cluster, cfg config, log *slog.Logger) ([]row, error) {
	l := newLoad(loadOptions{n: cfg.n, concurrency: cfg.concurrency, senders: cfg.senders, giveUp: 5 * time.Minute, rate: cfg.rate}, c.gws)
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	victim := c.gws[len(c.gws)-1]
	target := int64(float64(cfg.n) * cfg.killAfter)
	for l.ackedN.Load() < target {
		select {
		case <-done:
			return nil, errors.New("the load ended before the kill")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	pid := victim.pid()
	// Kill while the victim holds claimed jobs, if it gets any soon.
wait:
	for until := time.Now().Add(2 * time.Second); time.Now().Before(until); time.Sleep(5 * time.Millisecond) {
		if ids, err := c.runningOf(ctx, pid); err == nil && len(ids) > 0 {
			break
		}
		select {
		case <-done:
			break wait
		default:
		}
	}
	ackedAtKill := l.ackedN.Load()
	victim.cmd.Process.Kill() // SIGKILL: no shutdown, no drain
	<-victim.done
	killedAt := time.Now()
	held, kinds, err := c.runningKinds(ctx, pid)
	if err != nil {
		return nil, err
	}
	log.Info("killed", "instance", victim.idx, "pid", pid, "acked_before", ackedAtKill, "jobs_held", len(held))
	// Watch the dead instance's jobs until someone else has them.
	var takeover time.Duration
	for len(held) > 0 {
		n, err := c.stillHeld(ctx, held, pid)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			takeover = time.Since(killedAt)
			break
		}
		if time.Since(killedAt) > cfg.lease*3+time.Minute {
			return nil, fmt.Errorf("%d of the dead instance's jobs still held %s after the kill", n, time.Since(killedAt))
		}
		time.Sleep(200 * time.Millisecond)
	}
	<-done
	rows, err := common(ctx, c, cfg, l)
	if err != nil {
		return nil, err
	}
	_, per := l.statusCounts()
	toVictim := 0
	for k, v := range per {
		if k.instance == victim.idx && k.status != "200" {
			toVictim += v
		}
	}
	// A lease runs from the claim, so a job claimed just before the kill
	// is free at most one lease (plus the recovery poll, a quarter lease)
	// later; anything much sooner would mean a live lock was stolen.
	limit := cfg.lease + cfg.lease/4 + 5*time.Second
	pre := []row{
		{"killed", fmt.Sprintf("instance %d (pid %d) with SIGKILL after %d acks", victim.idx, pid, ackedAtKill), nil},
		{"deliveries refused by the dead instance (redelivered)", fmt.Sprint(toVictim), nil},
		{"jobs the dead instance held", fmt.Sprintf("%d %v", len(held), kinds), nil},
	}
	if len(held) > 0 {
		pre = append(pre, row{"all taken over by others within lease+¼", fmt.Sprintf("after %s (limit %s)", takeover.Round(100*time.Millisecond), limit), yes(takeover <= limit)})
	}
	return append(pre, rows...), nil
}

func crmWhen(d, limit time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("not within -drain %s", limit)
	}
	return fmt.Sprintf("after %s", d.Round(100*time.Millisecond))
}
