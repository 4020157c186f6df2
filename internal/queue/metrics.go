package queue

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	jobs     *prometheus.CounterVec
	retries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(q *Queue, reg prometheus.Registerer) *metrics {
	m := &metrics{
		jobs: register(q, reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_queue_jobs_total",
			Help: "Handler runs by job kind and outcome (done, retry, snoozed, dead).",
		}, []string{"kind", "result"})),
		retries: register(q, reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_queue_retries_total",
			Help: "Failed handler runs scheduled for another attempt, by job kind.",
		}, []string{"kind"})),
		duration: register(q, reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_queue_job_duration_seconds",
			Help:    "Handler run time by job kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"kind"})),
	}
	register(q, reg, prometheus.Collector(&depthCollector{q: q}))
	return m
}

// register registers c, or returns the collector already registered under
// its name, so that several queues (as in tests) can share a registry.
func register[C prometheus.Collector](q *Queue, reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	q.log.Warn("queue: register metrics", "err", err)
	return c
}

func (m *metrics) observe(kind, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.jobs.WithLabelValues(kind, result).Inc()
	if result == "retry" {
		m.retries.WithLabelValues(kind).Inc()
	}
	m.duration.WithLabelValues(kind).Observe(took.Seconds())
}

var depthDesc = prometheus.NewDesc("switchboard_queue_depth",
	"Jobs in the table by state, counted at scrape time.", []string{"state"}, nil)

// depthCollector counts jobs when scraped, so the gauge is right for the
// whole table, whichever instance enqueued or ran the jobs.
type depthCollector struct{ q *Queue }

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- depthDesc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	// A slow database must not hold up the scrape of every other metric.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stats, err := c.q.Stats(ctx)
	if err != nil {
		c.q.log.Warn("queue: depth metric", "err", err)
		return
	}
	for state, n := range stats {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n), state)
	}
}
