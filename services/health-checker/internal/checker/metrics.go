package checker

import "github.com/prometheus/client_golang/prometheus"

// metrics are the health-checker's own Prometheus metrics.
type metrics struct {
	nodes     *prometheus.GaugeVec
	evictions *prometheus.CounterVec
	braked    prometheus.Gauge
	leading   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_health_checker_nodes",
			Help: "Nodes by the status of their Ready condition at the last pass (Unknown includes nodes without one).",
		}, []string{"ready"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_health_checker_evictions_total",
			Help: "Pods evicted from tainted or deleted nodes, by action (Evict: graceful, ForceDelete: grace period 0).",
		}, []string{"action"}),
		braked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_health_checker_evictions_stopped",
			Help: "1 while evictions are stopped because more than --unhealthy-threshold of the nodes are unhealthy.",
		}),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_health_checker_leader",
			Help: "1 while this replica leads and checks nodes.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.nodes, m.evictions, m.braked, m.leading)
	}
	return m
}
