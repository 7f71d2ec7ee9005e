package xds

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the xDS server's Prometheus metrics.
type metrics struct {
	responses    *prometheus.CounterVec
	nacks        *prometheus.CounterVec
	streams      *prometheus.GaugeVec
	nodes        prometheus.Gauge
	updates      *prometheus.CounterVec
	buildSeconds prometheus.Histogram
	pushSeconds  prometheus.Histogram
	phaseTimeout prometheus.Counter
	problems     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_proxy_xds_pushes_total",
			Help: "xDS responses sent to proxies, by resource type and protocol variant (sotw, delta).",
		}, []string{"type", "variant"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_proxy_xds_nacks_total",
			Help: "xDS responses rejected by proxies, by resource type.",
		}, []string{"type"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "service_proxy_xds_streams",
			Help: "Open xDS streams, by protocol variant.",
		}, []string{"variant"}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "service_proxy_xds_nodes",
			Help: "Distinct proxy node ids with an open stream.",
		}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_proxy_snapshot_updates_total",
			Help: "Configuration updates, by result: pushed, or rejected by the consistency check (the last good configuration stays).",
		}, []string{"result"}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "service_proxy_snapshot_build_seconds",
			Help:    "Time to build and check the snapshots of one configuration update.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		pushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "service_proxy_snapshot_push_seconds",
			Help:    "Time from the start of an update until its last make-before-break phase was handed to the proxies.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		phaseTimeout: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "service_proxy_make_before_break_timeouts_total",
			Help: "Make-before-break phases that went ahead before every proxy had answered the previous one.",
		}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "service_proxy_translate_problems",
			Help: "Problems in Services and Endpoints in the last configuration (ports or Services not served as asked).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.responses, m.nacks, m.streams, m.nodes, m.updates, m.buildSeconds, m.pushSeconds, m.phaseTimeout, m.problems)
	}
	return m
}
