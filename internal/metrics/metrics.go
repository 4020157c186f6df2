// Package metrics defines the gateway's Prometheus series on a registry of
// its own (not the global default), so tests can build many gateways.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type Metrics struct {
	Registry *prometheus.Registry
	// WebhooksReceived counts deliveries by provider object and result
	// (stored, duplicate, bad_signature, bad_request, unknown_channel,
	// too_large, error).
	WebhooksReceived *prometheus.CounterVec
	// Messages counts messages stored or changed, by channel type,
	// direction and status.
	Messages *prometheus.CounterVec
	// OutboundLatency is the duration of a send call to the messenger.
	OutboundLatency *prometheus.HistogramVec
	// WebhookAck is how long we took to answer a webhook.
	WebhookAck prometheus.Histogram
	// IngestGroup is how many webhook deliveries shared one transaction
	// (group commit): mostly 1 at low load, larger under load.
	IngestGroup prometheus.Histogram
	// MirrorStep is how long each step of a per-message CRM mirror run
	// took (plan, read, mark, crm, record; routing.MirrorSteps).
	MirrorStep *prometheus.HistogramVec
}

func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		WebhooksReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhooks_received_total", Help: "Webhook deliveries received, by provider and result.",
		}, []string{"provider", "result"}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_messages_total", Help: "Messages by channel type, direction and status.",
		}, []string{"channel", "direction", "status"}),
		OutboundLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_outbound_latency_seconds", Help: "Duration of send calls to the messenger.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"channel", "result"}),
		WebhookAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchboard_webhook_ack_seconds", Help: "Time to store and acknowledge a webhook.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		IngestGroup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchboard_ingest_group_deliveries", Help: "Webhook deliveries stored together in one transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		MirrorStep: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_mirror_step_seconds", Help: "Duration of each step of a CRM mirror run (plan, read, mark, crm, record).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"step"}),
	}
	reg.MustRegister(m.WebhooksReceived, m.Messages, m.OutboundLatency, m.WebhookAck, m.IngestGroup, m.MirrorStep,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
