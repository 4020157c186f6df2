package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/metasim"
)

// loadOptions shape one run of inbound webhooks.
type loadOptions struct {
	n           int           // unique messages; 0 means until duration
	duration    time.Duration // stop starting new messages after this; 0 means until n
	rate        float64       // new messages per second; 0 means as fast as concurrency allows
	concurrency int
	senders     int
	// giveUp bounds how long one message is retried, as Meta gives up
	// after a while; the run's context bounds it too.
	giveUp time.Duration
}

// statusKey counts answers per instance.
type statusKey struct {
	instance int
	status   string // HTTP status or "conn refused"/"transport error"
}

// load sends unique signed WhatsApp text webhooks spread round-robin over
// the instances, and retries each one that is not acknowledged with 2xx
// on the next instance after a backoff, as Meta redelivers: so every
// message ends acknowledged (its wamid recorded) or given up.
type load struct {
	opts    loadOptions
	targets []*gateway
	hooks   []*metasim.WebhookClient

	next    atomic.Uint64 // round-robin position
	started atomic.Int64
	ackedN  atomic.Int64

	mu       sync.Mutex
	acked    map[string]int // wamid → the instance that acknowledged it
	from     map[string]string
	givenUp  []string
	byStatus map[statusKey]int
	non2xx   []failure // every non-2xx answer and transport error
	lat      []time.Duration
	ackAt    []time.Time
	first    time.Time
	last     time.Time
}

func newLoad(o loadOptions, targets []*gateway) *load {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: o.concurrency,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}
	hc := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	l := &load{opts: o, targets: targets, acked: map[string]int{}, from: map[string]string{}, byStatus: map[statusKey]int{}}
	for _, g := range targets {
		l.hooks = append(l.hooks, &metasim.WebhookClient{URL: g.url + "/webhooks/meta", AppSecret: appSecret, HTTPClient: hc})
	}
	return l
}

// run sends until n messages or duration, then waits for the retries of
// the ones in flight.
func (l *load) run(ctx context.Context) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range l.opts.concurrency {
		wg.Go(func() {
			for k := range work {
				l.one(ctx, k)
			}
		})
	}
	start := time.Now()
	l.mu.Lock()
	l.first = start
	l.mu.Unlock()
feed:
	for k := 0; l.opts.n == 0 || k < l.opts.n; k++ {
		if l.opts.duration > 0 && time.Since(start) >= l.opts.duration {
			break
		}
		if l.opts.rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(k) / l.opts.rate * float64(time.Second)))); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break feed
				}
			}
		}
		select {
		case work <- k:
			l.started.Add(1)
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	l.mu.Lock()
	l.last = time.Now()
	l.mu.Unlock()
}

// one delivers message k until it is acknowledged or given up.
func (l *load) one(ctx context.Context, k int) {
	from := fmt.Sprintf("7705%07d", k%max(l.opts.senders, 1))
	wamid := metasim.NewWAMID(from)
	payload, _, err := metasim.BuildWhatsAppWebhook(metasim.WhatsAppInbound{
		WABAID: wabaID, PhoneNumberID: phoneNumberID, DisplayPhone: "+77012345678",
		From: from, Name: fmt.Sprintf("Клиент %d", k%max(l.opts.senders, 1)), WAMID: wamid, Time: time.Now(),
		Text: fmt.Sprintf("fault message %d", k),
	})
	if err != nil {
		panic(err) // the builder fails only on unmarshalable input, which this is not
	}
	giveUp := time.Now().Add(l.opts.giveUp)
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		i := int(l.next.Add(1)-1) % len(l.hooks)
		t0 := time.Now()
		st, err := l.hooks[i].Post(ctx, payload)
		lat := time.Since(t0)
		label := fmt.Sprint(st)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			label = "transport error"
		}
		l.mu.Lock()
		l.byStatus[statusKey{i, label}]++
		if err == nil && st >= 200 && st < 300 {
			l.acked[wamid] = i
			l.from[wamid] = from
			l.lat = append(l.lat, lat)
			l.ackAt = append(l.ackAt, time.Now())
			l.mu.Unlock()
			l.ackedN.Add(1)
			return
		}
		l.non2xx = append(l.non2xx, failure{time.Now(), label})
		if time.Now().After(giveUp) {
			l.givenUp = append(l.givenUp, wamid)
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		// Meta backs off between redeliveries; jitter spreads them.
		d := backoff + time.Duration(rand.Int64N(int64(backoff/2)))
		backoff = min(backoff*2, 2*time.Second)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
}

// snapshot copies the acknowledged wamids.
func (l *load) ackedWAMIDs() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.acked))
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

// statusCounts sums answers by status over all instances, and per instance.
func (l *load) statusCounts() (total map[string]int, per map[statusKey]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	total = map[string]int{}
	per = map[statusKey]int{}
	for k, v := range l.byStatus {
		total[k.status] += v
		per[k] = v
	}
	return total, per
}

// failure is one answer that did not acknowledge a delivery.
type failure struct {
	at    time.Time
	label string
}

// failuresBetween counts non-2xx answers and transport errors in [a, b]
// by label.
func (l *load) failuresBetween(a, b time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, f := range l.non2xx {
		if !f.at.Before(a) && !f.at.After(b) {
			out[f.label]++
		}
	}
	return out
}

// givenUpCount counts messages retried until giveUp without an
// acknowledgement (Meta would have dropped them).
func (l *load) givenUpCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.givenUp)
}

// latency returns p50/p99 of acknowledged deliveries.
func (l *load) latency() (p50, p99 time.Duration) {
	l.mu.Lock()
	lat := append([]time.Duration(nil), l.lat...)
	l.mu.Unlock()
	if len(lat) == 0 {
		return 0, 0
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return lat[len(lat)*50/100], lat[min(len(lat)*99/100, len(lat)-1)]
}

// ackRate is acknowledged messages per second over the run.
func (l *load) ackRate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.last
	if end.IsZero() {
		end = time.Now()
	}
	if s := end.Sub(l.first).Seconds(); s > 0 {
		return float64(len(l.acked)) / s
	}
	return 0
}

// replier has a customer write and an operator answer through the API at
// a steady rate, spread over the instances, so that sends, Graph calls and
// status webhooks run alongside the inbound load.
type replier struct {
	c     *cluster
	rate  float64
	sent  atomic.Int64
	fails atomic.Int64
}

func (r *replier) run(ctx context.Context) {
	if r.rate <= 0 {
		return
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / r.rate))
	defer t.Stop()
	var i int
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The customer writes first, through the Graph simulator (to
		// the public instance), so that the simulator's 24-hour window
		// is open: the load's own webhooks bypass it.
		to := fmt.Sprintf("7706%07d", i%1000)
		if _, err := r.c.meta.SendWhatsAppText(ctx, phoneNumberID, to, "Собеседник", fmt.Sprintf("question %d", i)); err != nil {
			if ctx.Err() == nil {
				r.fails.Add(1)
			}
			i++
			continue
		}
		g := r.c.gws[i%len(r.c.gws)]
		i++
		if !g.alive() {
			continue
		}
		st, _, err := r.c.apiOn(ctx, g, "POST", "/api/v1/channels/"+r.c.channel+"/messages", map[string]any{"to": "+" + to, "text": fmt.Sprintf("reply %d", i)})
		if err == nil && st == http.StatusAccepted {
			r.sent.Add(1)
		} else if ctx.Err() == nil {
			r.fails.Add(1)
		}
	}
}

// firstAckAfter is when the first delivery after t was acknowledged (zero
// if none was).
func (l *load) firstAckAfter(t time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best time.Time
	for _, a := range l.ackAt {
		if a.After(t) && (best.IsZero() || a.Before(best)) {
			best = a
		}
	}
	return best
}
