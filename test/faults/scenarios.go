package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/routing"
)

// pgctl runs pg_ctlcluster on the configured cluster.
func pgctl(ctx context.Context, cluster, action string) error {
	args := append([]string{"--skip-systemctl-redirect"}, strings.Fields(cluster)...)
	args = append(args, action)
	out, err := exec.CommandContext(ctx, "pg_ctlcluster", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctlcluster %s: %w: %s", action, err, out)
	}
	return nil
}

// readiness probes every instance's /readyz once; true means 200.
func (c *cluster) readiness() []bool {
	out := make([]bool, len(c.gws))
	for i, g := range c.gws {
		st, _ := probe(g.url + "/readyz")
		out[i] = st == http.StatusOK
	}
	return out
}

// pgRestart stops PostgreSQL for -pg-down in the middle of the load and
// starts it again; the gateways are left alone to recover.
func pgRestart(ctx context.Context, c *cluster, cfg config, log *slog.Logger) ([]row, error) {
	rate := cfg.rate
	if rate == 0 {
		rate = 150
	}
	l := newLoad(loadOptions{n: cfg.n, rate: rate, concurrency: cfg.concurrency, senders: cfg.senders, giveUp: 5 * time.Minute}, c.gws)
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	for l.ackedN.Load() < int64(float64(cfg.n)*0.3) {
		select {
		case <-done:
			return nil, errors.New("the load ended before the outage")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	ackedBefore := l.ackedN.Load()
	stopAt := time.Now()
	if err := pgctl(ctx, cfg.pgCluster, "stop"); err != nil {
		return nil, err
	}
	stoppedAt := time.Now()
	log.Info("PostgreSQL stopped", "took", stoppedAt.Sub(stopAt), "acked_before", ackedBefore)
	notReady := make([]bool, len(c.gws))
	var readyProbes, notReadyProbes int
	for time.Since(stoppedAt) < cfg.pgDown {
		for i, ok := range c.readiness() {
			if ok {
				readyProbes++
			} else {
				notReadyProbes++
				notReady[i] = true
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	ackedDuring := l.ackedN.Load() - ackedBefore
	if err := pgctl(context.WithoutCancel(ctx), cfg.pgCluster, "start"); err != nil {
		return nil, err
	}
	startedAt := time.Now()
	log.Info("PostgreSQL started", "down", startedAt.Sub(stopAt))
	var readyAt time.Time
	for readyAt.IsZero() && time.Since(startedAt) < 2*time.Minute {
		all := true
		for _, ok := range c.readiness() {
			all = all && ok
		}
		if all {
			readyAt = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	<-done
	rows, err := common(ctx, c, cfg, l)
	if err != nil {
		return nil, err
	}
	during := l.failuresBetween(stopAt, startedAt)
	after := l.failuresBetween(startedAt.Add(30*time.Second), time.Now())
	only503 := true
	for k := range during {
		only503 = only503 && k == "503"
	}
	allNotReady := true
	for _, nr := range notReady {
		allNotReady = allNotReady && nr
	}
	firstAck := l.firstAckAfter(startedAt)
	pre := []row{
		{"outage", fmt.Sprintf("PostgreSQL stopped after %d acks, down %s (stop took %s)", ackedBefore, startedAt.Sub(stopAt).Round(100*time.Millisecond), stoppedAt.Sub(stopAt).Round(100*time.Millisecond)), nil},
		{"acks during the outage", fmt.Sprint(ackedDuring), nil},
		{"answers during the outage", statusLine(during), yes(during["503"] > 0 && only503)},
		{"/readyz not ready during the outage", fmt.Sprintf("every instance: %v (%d not-ready, %d ready probes)", allNotReady, notReadyProbes, readyProbes), yes(allNotReady)},
		{"every /readyz ready again after start", fmt.Sprintf("after %s (pg_ctlcluster start returns once it accepts connections)", readyAt.Sub(startedAt).Round(time.Millisecond)), yes(!readyAt.IsZero())},
		{"first ack after start", fmt.Sprintf("after %s", firstAck.Sub(startedAt).Round(time.Millisecond)), yes(!firstAck.IsZero())},
		{"non-2xx from 30 s after start on", statusLine(after), yes(len(after) == 0)},
	}
	return append(pre, rows...), nil
}

// crmDown takes the CRM simulator off the network for -crm-down under a
// steady load, then brings it back and waits for the work to drain.
func crmDown(ctx context.Context, c *cluster, cfg config, log *slog.Logger) ([]row, error) {
	lead := 10 * time.Second
	l := newLoad(loadOptions{rate: cfg.rate, duration: lead + cfg.crmDown + 20*time.Second, concurrency: cfg.concurrency, senders: cfg.senders, giveUp: 5 * time.Minute}, c.gws)
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	time.Sleep(lead)
	before := len(c.crmInbound())
	downAt := time.Now()
	c.crm.down()
	log.Info("CRM simulator down", "for", cfg.crmDown)
	maxBusy := 0
	for time.Since(downAt) < cfg.crmDown {
		if busy, _, err := c.jobsLeft(ctx, time.Now()); err == nil {
			maxBusy = max(maxBusy, busy)
		}
		time.Sleep(time.Second)
	}
	during := len(c.crmInbound()) - before
	backlog, _, _ := c.jobsLeft(ctx, time.Now())
	stored, _ := c.storedInbound(ctx)
	waiting := len(stored) - len(c.crmInbound())
	if err := c.crm.up(); err != nil {
		return nil, err
	}
	upAt := time.Now()
	log.Info("CRM simulator up", "waiting_messages", waiting, "due_jobs", backlog)
	// Until every stored message is in the CRM: the drain of the work that
	// waited, measured from the CRM's return.
	var caughtUp time.Duration
	for time.Since(upAt) < cfg.drain {
		st, err := c.storedInbound(ctx)
		if err == nil && len(c.crmInbound()) >= len(st) && isClosed(done) {
			caughtUp = time.Since(upAt)
			break
		}
		time.Sleep(time.Second)
	}
	<-done
	ackFail := l.failuresBetween(downAt, upAt)
	rows, err := common(ctx, c, cfg, l)
	if err != nil {
		return nil, err
	}
	pre := []row{
		{"outage", fmt.Sprintf("CRM simulator unreachable (connections refused) for %s under %g msg/s", upAt.Sub(downAt).Round(100*time.Millisecond), cfg.rate), nil},
		{"intake unaffected: non-2xx during the outage", statusLine(ackFail), yes(len(ackFail) == 0)},
		{"messages into the CRM during the outage (a call in flight at the cut)", fmt.Sprint(during), nil},
		{"work waiting when the CRM came back", fmt.Sprintf("%d messages not in the CRM, %d jobs due (max %d)", waiting, backlog, maxBusy), yes(waiting > 0)},
		{"every stored message in the CRM after its return", fmt.Sprintf("after %s (load still running until it ends)", caughtUp.Round(100*time.Millisecond)), yes(caughtUp > 0)},
	}
	return append(pre, rows...), nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sample is one soak measurement of every instance.
type sample struct {
	at         time.Duration
	rss        []int64
	heapMB     []int64 // Go heap in use (go_memstats_heap_inuse_bytes)
	goroutines []int
	due        int
	acked      int64
	// mirror sums, over the instances, the time spent in each mirror step
	// and in crm.mirror runs (and their counts) since the start.
	mirror mirrorTime
}

// mirrorTime is where the instances' per-message mirror runs spent their
// time, read from their /metrics, and the portal simulator's own time on
// REST calls ("sim", any caller's).
type mirrorTime struct {
	secs  map[string]float64 // by step, "runs" for whole runs, "sim"
	count map[string]float64
}

// addSeries adds an instance's mirror series to t.
func (t *mirrorTime) addSeries(series map[string]float64) {
	if t.secs == nil {
		t.secs, t.count = map[string]float64{}, map[string]float64{}
	}
	for _, step := range routing.MirrorSteps {
		t.secs[step] += series[`switchboard_mirror_step_seconds_sum{step="`+step+`"}`]
		t.count[step] += series[`switchboard_mirror_step_seconds_count{step="`+step+`"}`]
	}
	t.secs["runs"] += series[`switchboard_queue_job_duration_seconds_sum{kind="`+routing.JobMirror+`"}`]
	t.count["runs"] += series[`switchboard_queue_job_duration_seconds_count{kind="`+routing.JobMirror+`"}`]
}

// since says where the mirror's time went between prev and t: runs and
// their seconds, then each step's seconds and count.
func (t mirrorTime) since(prev mirrorTime) string {
	d := func(m, p map[string]float64, k string) float64 { return m[k] - p[k] }
	parts := []string{fmt.Sprintf("%.0f runs %.1fs", d(t.count, prev.count, "runs"), d(t.secs, prev.secs, "runs"))}
	for _, step := range append(routing.MirrorSteps, "sim") {
		parts = append(parts, fmt.Sprintf("%s %.1fs/%.0f", step, d(t.secs, prev.secs, step), d(t.count, prev.count, step)))
	}
	return strings.Join(parts, ", ")
}

// soak holds a steady -rate with operator replies (sends to Graph, whose
// simulator posts sent/delivered/read back) for -soak, sampling each
// instance's resident memory and goroutines every -sample.
func soak(ctx context.Context, c *cluster, cfg config, log *slog.Logger) ([]row, error) {
	l := newLoad(loadOptions{rate: cfg.rate, duration: cfg.soak, concurrency: cfg.concurrency, senders: cfg.senders, giveUp: 5 * time.Minute}, c.gws)
	rp := &replier{c: c, rate: cfg.replyRate}
	rctx, stopReplies := context.WithCancel(ctx)
	defer stopReplies()
	go rp.run(rctx)
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	start := time.Now()
	var samples []sample
	take := func() {
		s := sample{at: time.Since(start), acked: l.ackedN.Load()}
		for _, g := range c.gws {
			s.rss = append(s.rss, rssKB(g.pid()))
			series := c.scrape(ctx, g)
			n, ok := series["go_goroutines"]
			if !ok {
				n = -1
			}
			s.goroutines = append(s.goroutines, int(n))
			s.heapMB = append(s.heapMB, int64(series["go_memstats_heap_inuse_bytes"])>>20)
			s.mirror.addSeries(series)
		}
		s.due, _, _ = c.jobsLeft(ctx, time.Now())
		s.mirror.secs["sim"], s.mirror.count["sim"] = time.Duration(c.simNanos.Load()).Seconds(), float64(c.simCalls.Load())
		var prev mirrorTime
		if len(samples) > 0 {
			prev = samples[len(samples)-1].mirror
		}
		samples = append(samples, s)
		log.Info("soak sample", "at", s.at.Round(time.Second), "rss_kb", s.rss, "heap_mb", s.heapMB, "goroutines", s.goroutines, "due_jobs", s.due, "acked", s.acked,
			"mirror", s.mirror.since(prev))
	}
	take()
	t := time.NewTicker(cfg.sample)
loop:
	for {
		select {
		case <-done:
			break loop
		case <-t.C:
			take()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	t.Stop()
	stopReplies()
	take()
	rows, err := common(ctx, c, cfg, l)
	if err != nil {
		return nil, err
	}
	take() // after the drain
	out, err := c.outboundStatuses(ctx)
	if err != nil {
		return nil, err
	}
	pre := []row{
		{"load", fmt.Sprintf("%g msg/s for %s, %g replies/s through the API (%d accepted, %d refused)", cfg.rate, cfg.soak, cfg.replyRate, rp.sent.Load(), rp.fails.Load()), nil},
		{"replies by status", statusLine(out), nil},
	}
	var prev mirrorTime
	for _, s := range samples {
		pre = append(pre, row{fmt.Sprintf("sample +%s", s.at.Round(time.Second)),
			fmt.Sprintf("RSS MB %v, heap MB %v, goroutines %v, due jobs %d, acked %d; mirror: %s", mb(s.rss), s.heapMB, s.goroutines, s.due, s.acked, s.mirror.since(prev)), nil})
		prev = s.mirror
	}
	// Flat: the last sample under load against the first one after a
	// minute's warm-up (or the second sample), per instance.
	if len(samples) >= 4 {
		base, last := samples[1], samples[len(samples)-2]
		flat := true
		var parts []string
		for i := range c.gws {
			rssOK := last.rss[i] <= base.rss[i]*3/2+20*1024
			gOK := last.goroutines[i] <= base.goroutines[i]*3/2+50
			flat = flat && rssOK && gOK
			parts = append(parts, fmt.Sprintf("gw%d RSS %d→%d MB, goroutines %d→%d", i, base.rss[i]/1024, last.rss[i]/1024, base.goroutines[i], last.goroutines[i]))
		}
		pre = append(pre, row{"flat under load (≤1.5× +20 MB, ≤1.5× +50)", strings.Join(parts, "; "), yes(flat)})
	}
	return append(pre, rows...), nil
}

func mb(kb []int64) []int64 {
	out := make([]int64, len(kb))
	for i, v := range kb {
		out[i] = v / 1024
	}
	return out
}

// outboundStatuses counts the channel's outbound messages by status.
func (c *cluster) outboundStatuses(ctx context.Context) (map[string]int, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM messages WHERE channel_id = $1 AND direction = 'out' GROUP BY status`, c.channel)
	if err != nil {
		return nil, fmt.Errorf("count outbound: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}
