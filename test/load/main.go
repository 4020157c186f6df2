// Command load fires signed WhatsApp inbound-text webhooks at a running
// gateway and reports how fast it acknowledges them: throughput, latency
// percentiles and the count of each HTTP status.
//
//	go run ./test/load -url http://127.0.0.1:8080 -app-secret "$SWITCHBOARD_META_APP_SECRET" -n 5000 -c 32
//
// With -admin-token it first creates the WhatsApp channel of
// -phone-number-id / -waba-id / -access-token through the admin API (the
// gateway confirms the token with Graph, so these must be a real number's
// or the simulator's, as the defaults are); one that exists already is
// used as it is. Without it the channel must exist. A fraction of deliveries (-duplicates) re-sends an
// earlier payload byte for byte, as Meta's retries do, to exercise dedupe.
//
// A fraction of deliveries (-statuses) are status webhooks (sent, then
// delivered, then read, one status each, as WhatsApp sends them) for the
// run's own earlier messages, placed a little after the message they
// name: near enough that some overtake each other or the message in
// flight, as Meta's do. They name customer messages, not business ones
// (a load run has no wamids of messages the gateway sent), which the
// gateway moves exactly as an outbound message without a CRM link: the
// same lock, read and update.
//
// -senders N spreads the unique messages over exactly N customer numbers
// (fewer only when there are fewer unique messages), numbered from
// -sender-offset: the gateway has not seen them unless an earlier run used
// overlapping numbers, so a run with a fresh offset measures new customers
// and a repeat of the same run measures known ones.
//
// -raw inserts the same number of message-shaped rows straight into the
// database (-raw-db, else SWITCHBOARD_DATABASE_URL: a postgres:// URL or a
// SQLite file path) with the same concurrency, one transaction per row, into
// a scratch table it creates and drops; -raw-compare does the gateway run and
// then the raw one and prints both rates, their ratio and p50/p99 side by side.
//
// It refuses non-loopback targets unless -allow-remote is given: it is a
// load generator and should not be pointed at someone else's server by
// accident.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/metasim"
)

const (
	maxMessages    = 1_000_000
	maxConcurrency = 1024
	// customer numbers are 7705 followed by seven digits
	maxSenderNumbers = 10_000_000
)

type config struct {
	url           string
	appSecret     string
	adminToken    string
	phoneNumberID string
	wabaID        string
	displayPhone  string
	accessToken   string
	n             int
	concurrency   int
	duplicates    float64
	statuses      float64
	senders       int
	senderOffset  int
	raw           bool
	rawCompare    bool
	rawDB         string
	timeout       time.Duration
	allowRemote   bool
	seed          uint64
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
	if err := run(ctx, cfg, os.Stdout, logger); err != nil {
		logger.Error("load run failed", "err", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "gateway base URL; webhooks go to {url}/webhooks/meta")
	fs.StringVar(&c.appSecret, "app-secret", "load-app-secret", "Meta app secret; must equal the gateway's SWITCHBOARD_META_APP_SECRET")
	fs.StringVar(&c.adminToken, "admin-token", "", "if set, create the WhatsApp channel via POST {url}/api/v1/channels first (an existing one is kept)")
	fs.StringVar(&c.phoneNumberID, "phone-number-id", "109283746501928", "phone_number_id to target (default: the simulator's)")
	fs.StringVar(&c.wabaID, "waba-id", "104857392017465", "WABA id of that number, put in entry[].id (default: the simulator's)")
	fs.StringVar(&c.accessToken, "access-token", "sandbox-token", "the number's access token, for -admin-token (default: the simulator's)")
	fs.StringVar(&c.displayPhone, "display-phone", "+77010000000", "business display number in webhook metadata")
	fs.IntVar(&c.n, "n", 5000, "total webhooks to send, duplicates included")
	fs.IntVar(&c.concurrency, "c", 32, "concurrent connections")
	fs.Float64Var(&c.duplicates, "duplicates", 0.05, "fraction of webhooks that re-send an earlier payload verbatim (0 to 0.9)")
	fs.Float64Var(&c.statuses, "statuses", 0, "fraction of webhooks that are status webhooks (sent, delivered, read) for the run's earlier messages (0 to 0.9, with -duplicates at most 0.9)")
	fs.IntVar(&c.senders, "senders", 3000, "distinct customer numbers")
	fs.IntVar(&c.senderOffset, "sender-offset", 0, "first customer number's index: customers are +7705{offset..offset+senders-1}; a fresh offset means customers new to the gateway")
	fs.BoolVar(&c.raw, "raw", false, "no gateway: insert -n rows straight into -raw-db with -c workers, one transaction each, and print the rate")
	fs.BoolVar(&c.rawCompare, "raw-compare", false, "after the gateway run, do the -raw run and print both rates, their ratio and p50/p99")
	fs.StringVar(&c.rawDB, "raw-db", os.Getenv("SWITCHBOARD_DATABASE_URL"), "database for -raw/-raw-compare: postgres:// URL or SQLite file path (default $SWITCHBOARD_DATABASE_URL)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "stop after this long, whatever is left")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback -url")
	fs.Uint64Var(&c.seed, "seed", 0, "random seed for the send plan (0: time-based)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.n < 1 || c.n > maxMessages:
		return c, fmt.Errorf("-n must be 1..%d, got %d", maxMessages, c.n)
	case c.concurrency < 1 || c.concurrency > maxConcurrency:
		return c, fmt.Errorf("-c must be 1..%d, got %d", maxConcurrency, c.concurrency)
	case c.duplicates < 0 || c.duplicates > 0.9:
		return c, fmt.Errorf("-duplicates must be 0..0.9, got %g", c.duplicates)
	case c.statuses < 0 || c.statuses > 0.9 || c.duplicates+c.statuses > 0.9:
		return c, fmt.Errorf("-statuses must be 0..0.9 and -duplicates plus -statuses at most 0.9, got %g and %g", c.statuses, c.duplicates)
	case c.senders < 1 || c.senders > maxMessages:
		return c, fmt.Errorf("-senders must be 1..%d, got %d", maxMessages, c.senders)
	case c.senderOffset < 0 || c.senderOffset+c.senders > maxSenderNumbers:
		return c, fmt.Errorf("-sender-offset must be 0..%d-senders, got %d", maxSenderNumbers, c.senderOffset)
	case c.raw && c.rawCompare:
		return c, errors.New("-raw and -raw-compare: choose one (-raw-compare includes the raw run)")
	case c.timeout <= 0:
		return c, fmt.Errorf("-timeout must be positive, got %s", c.timeout)
	}
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	return c, nil
}

func run(ctx context.Context, cfg config, out io.Writer, logger *slog.Logger) error {
	var rawT rawTarget
	if cfg.raw || cfg.rawCompare {
		var err error
		if rawT, err = parseRawDB(cfg.rawDB, cfg.allowRemote); err != nil {
			return err
		}
	}
	if cfg.raw {
		_, err := rawPhase(ctx, cfg, rawT, out, logger)
		return err
	}
	base, err := url.Parse(strings.TrimSuffix(cfg.url, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("-url %q is not an absolute http(s) URL", cfg.url)
	}
	if !cfg.allowRemote && !isLoopback(base.Hostname()) {
		return fmt.Errorf("refusing non-loopback target %q without -allow-remote", base.Hostname())
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	transport := &http.Transport{
		Proxy:               nil, // a loopback benchmark must not detour through $HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.concurrency,
		MaxIdleConnsPerHost: cfg.concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed>>32|1))

	target := channel{phoneNumberID: cfg.phoneNumberID, wabaID: cfg.wabaID, displayPhone: cfg.displayPhone}
	if cfg.adminToken != "" {
		target, err = createChannel(ctx, client, base.String(), cfg.adminToken, cfg.accessToken, target)
		if err != nil {
			return err
		}
		logger.Info("channel ready", "id", target.id, "phone_number_id", target.phoneNumberID)
	}

	plan, err := buildPlan(cfg, target, rng)
	if err != nil {
		return err
	}
	hook := &metasim.WebhookClient{URL: base.String() + "/webhooks/meta", AppSecret: cfg.appSecret, HTTPClient: client}
	logger.Info("firing webhooks", "url", hook.URL, "n", len(plan.sends), "unique", plan.unique, "concurrency", cfg.concurrency)
	res := fire(ctx, hook, plan.sends, cfg.concurrency)
	report(out, cfg, hook.URL, target, plan, res)
	if cfg.rawCompare && !res.timedOut && ctx.Err() == nil {
		fmt.Fprintln(out)
		raw, err := rawPhase(ctx, cfg, rawT, out, logger)
		if err != nil {
			return err
		}
		reportCompare(out, res, raw)
	}
	if res.timedOut {
		return fmt.Errorf("stopped by -timeout %s after %d of %d webhooks", cfg.timeout, res.attempted, len(plan.sends))
	}
	if bad := res.attempted - res.acked2xx; bad > 0 {
		return fmt.Errorf("%d of %d webhooks were not acknowledged with 2xx", bad, res.attempted)
	}
	return nil
}

// rawPhase runs and reports the -raw inserts under its own -timeout.
func rawPhase(ctx context.Context, cfg config, t rawTarget, out io.Writer, logger *slog.Logger) (rawResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	logger.Info("raw inserts", "db", t.display, "n", cfg.n, "concurrency", cfg.concurrency)
	res, err := runRaw(ctx, t, cfg.n, cfg.concurrency, cfg.seed)
	if res.table != "" && (res.attempted > 0 || err == nil) {
		reportRaw(out, t, cfg.concurrency, res)
	}
	switch {
	case err != nil:
		return res, err
	case res.timedOut:
		return res, fmt.Errorf("raw: stopped by -timeout %s after %d of %d rows", cfg.timeout, res.attempted, cfg.n)
	case res.inserted != cfg.n || res.stored != res.inserted:
		return res, fmt.Errorf("raw: %d of %d rows inserted, %d counted back", res.inserted, cfg.n, res.stored)
	}
	return res, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type channel struct {
	id            string // empty when not created by us
	phoneNumberID string
	wabaID        string
	displayPhone  string
}

// createChannel registers the WhatsApp channel the webhooks go to. The
// gateway connects a number only after Graph confirms its token, so a
// made-up number cannot be used; wamids are fresh each run, so an earlier
// run's dedupe state does not matter, and an existing channel
// (409 channel_exists) is used as it is.
func createChannel(ctx context.Context, client *http.Client, baseURL, adminToken, accessToken string, ch channel) (channel, error) {
	body, err := json.Marshal(map[string]string{
		"type": "whatsapp", "name": "load",
		"phone_number_id": ch.phoneNumberID, "waba_id": ch.wabaID,
		"display_phone": ch.displayPhone, "access_token": accessToken,
	})
	if err != nil {
		return ch, fmt.Errorf("create channel: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/v1/channels", bytes.NewReader(body))
	if err != nil {
		return ch, fmt.Errorf("create channel: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return ch, fmt.Errorf("create channel: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusConflict {
		return ch, nil
	}
	if resp.StatusCode != http.StatusCreated {
		return ch, fmt.Errorf("create channel: HTTP %d: %s", resp.StatusCode, truncate(raw, 512))
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &created); err != nil || created.ID == "" {
		return ch, fmt.Errorf("create channel: response has no id: %s", truncate(raw, 512))
	}
	ch.id = created.ID
	return ch, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

type plan struct {
	sends    [][]byte // in send order; duplicates share the backing array of their original
	unique   int
	statuses int
	senders  int
}

// buildPlan renders every payload up front so that JSON encoding and HMAC
// key setup stay out of the measured latency.
func buildPlan(cfg config, ch channel, rng *rand.Rand) (plan, error) {
	dups := int(float64(cfg.n) * cfg.duplicates)
	statuses := int(float64(cfg.n) * cfg.statuses)
	unique := cfg.n - dups - statuses
	senders := min(cfg.senders, unique)
	now := time.Now()
	seen := make(map[string]bool, unique)
	originals := make([][]byte, unique)
	wamids := make([]string, unique)
	froms := make([]string, unique)
	for i := range originals {
		k := cfg.senderOffset + i%senders
		from := fmt.Sprintf("7705%07d", k)
		wamid := metasim.NewWAMID(from)
		for seen[wamid] {
			wamid = metasim.NewWAMID(from)
		}
		seen[wamid] = true
		name := fmt.Sprintf("Load User %d", k)
		if k%2 == 1 {
			// Cyrillic names exercise the \uXXXX escaping path of signature checks.
			name = fmt.Sprintf("Клиент %d", k)
		}
		payload, _, err := metasim.BuildWhatsAppWebhook(metasim.WhatsAppInbound{
			WABAID: ch.wabaID, PhoneNumberID: ch.phoneNumberID, DisplayPhone: ch.displayPhone,
			From: from, Name: name, WAMID: wamid, Time: now,
			Text: fmt.Sprintf("load message %d / сообщение %d", i, i),
		})
		if err != nil {
			return plan{}, err
		}
		originals[i], wamids[i], froms[i] = payload, wamid, from
	}
	// Place each duplicate a little after its original: near enough that
	// some race the original in flight (concurrent dedupe), some well after.
	type slot struct {
		order   float64
		payload []byte
	}
	slots := make([]slot, 0, cfg.n)
	for i, p := range originals {
		slots = append(slots, slot{float64(i), p})
	}
	spread := float64(4 * cfg.concurrency)
	for range dups {
		j := rng.IntN(unique)
		slots = append(slots, slot{float64(j) + 0.5 + rng.Float64()*spread, originals[j]})
	}
	// Statuses go to the messages in turn, each message's in Meta's order
	// (sent, delivered, read, then again from sent if there are more),
	// each placed after its message by at least the concurrency and up
	// to the duplicates' spread more, so most find their message stored.
	kinds := [...]string{"sent", "delivered", "read"}
	for k := range statuses {
		j, kind := k/len(kinds)%unique, k%len(kinds)
		payload, err := metasim.BuildWhatsAppStatusWebhook(metasim.WhatsAppStatus{
			WABAID: ch.wabaID, PhoneNumberID: ch.phoneNumberID, DisplayPhone: ch.displayPhone,
			WAMID: wamids[j], Status: kinds[kind], RecipientID: froms[j], Time: now.Add(time.Duration(kind+1) * time.Second),
		})
		if err != nil {
			return plan{}, err
		}
		at := float64(j) + float64(cfg.concurrency) + float64(kind)*0.1 + rng.Float64()*spread
		slots = append(slots, slot{at, payload})
	}
	sort.SliceStable(slots, func(a, b int) bool { return slots[a].order < slots[b].order })
	sends := make([][]byte, len(slots))
	for i, s := range slots {
		sends[i] = s.payload
	}
	return plan{sends: sends, unique: unique, statuses: statuses, senders: senders}, nil
}

type result struct {
	attempted int
	acked2xx  int
	byStatus  map[string]int
	latencies []time.Duration // of requests that got an HTTP answer
	elapsed   time.Duration
	timedOut  bool
	errSample []string
}

func fire(ctx context.Context, hook *metasim.WebhookClient, sends [][]byte, concurrency int) result {
	jobs := make(chan []byte)
	var (
		mu  sync.Mutex
		res = result{byStatus: map[string]int{}, latencies: make([]time.Duration, 0, len(sends))}
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for payload := range jobs {
				t0 := time.Now()
				status, err := hook.Post(ctx, payload)
				lat := time.Since(t0)
				mu.Lock()
				res.attempted++
				switch {
				case err != nil && ctx.Err() != nil:
					res.byStatus["cancelled"]++
				case err != nil:
					res.byStatus["transport error"]++
					if len(res.errSample) < 3 {
						res.errSample = append(res.errSample, err.Error())
					}
				default:
					res.byStatus[fmt.Sprint(status)]++
					res.latencies = append(res.latencies, lat)
					if status >= 200 && status < 300 {
						res.acked2xx++
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, p := range sends {
		select {
		case jobs <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	return res
}

// percentile uses the nearest-rank method on sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func report(out io.Writer, cfg config, target string, ch channel, p plan, res result) {
	lat := slices.Clone(res.latencies)
	slices.Sort(lat)
	answered := len(lat)
	fmt.Fprintf(out, "target       %s\n", target)
	if ch.id != "" {
		fmt.Fprintf(out, "channel      %s (created, phone_number_id %s)\n", ch.id, ch.phoneNumberID)
	} else {
		fmt.Fprintf(out, "channel      phone_number_id %s\n", ch.phoneNumberID)
	}
	fmt.Fprintf(out, "plan         %d webhooks: %d unique wamids + %d verbatim duplicates + %d statuses, %d senders, concurrency %d\n",
		len(p.sends), p.unique, len(p.sends)-p.unique-p.statuses, p.statuses, p.senders, cfg.concurrency)
	fmt.Fprintf(out, "senders      %d distinct customers, +7705%07d…+7705%07d (new to the gateway unless an earlier run used these numbers)\n",
		p.senders, cfg.senderOffset, cfg.senderOffset+p.senders-1)
	fmt.Fprintf(out, "sent         %d in %s\n", res.attempted, res.elapsed.Round(time.Millisecond))
	if secs := res.elapsed.Seconds(); secs > 0 {
		fmt.Fprintf(out, "throughput   %.1f acks/s\n", float64(answered)/secs)
	}
	fmt.Fprintf(out, "latency      p50 %s  p90 %s  p99 %s  max %s  (n=%d)\n",
		fmtDur(percentile(lat, 50)), fmtDur(percentile(lat, 90)), fmtDur(percentile(lat, 99)), fmtDur(percentile(lat, 100)), answered)
	keys := make([]string, 0, len(res.byStatus))
	for k := range res.byStatus {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	for i, k := range keys {
		label := "status"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(out, "%-12s %s: %d\n", label, k, res.byStatus[k])
	}
	for _, e := range res.errSample {
		fmt.Fprintf(out, "error        %s\n", e)
	}
	if res.byStatus["401"]+res.byStatus["403"] > 0 {
		fmt.Fprintln(out, "hint         401/403 usually means -app-secret differs from the gateway's SWITCHBOARD_META_APP_SECRET")
	}
	if res.timedOut {
		fmt.Fprintf(out, "note         stopped by -timeout %s before the plan finished\n", cfg.timeout)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
