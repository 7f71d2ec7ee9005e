package scheduler

import "github.com/prometheus/client_golang/prometheus"

// metrics are the scheduler's Prometheus metrics.
type metrics struct {
	attempts      *prometheus.CounterVec
	bindings      *prometheus.CounterVec
	preemptions   prometheus.Counter
	cycleDuration prometheus.Histogram
	pending       *prometheus.GaugeVec
	leader        prometheus.Gauge
	cacheNodes    prometheus.Gauge
	cachePods     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_scheduler_schedule_attempts_total", Help: "Scheduling cycles by result: scheduled, unschedulable or error.",
		}, []string{"result", "profile"}),
		bindings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_scheduler_bindings_total", Help: "Bind calls by result: bound, conflict (already bound or gone) or error.",
		}, []string{"result"}),
		preemptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bosun_scheduler_preemption_attempts_total", Help: "Scheduling cycles that ran preemption.",
		}),
		cycleDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bosun_scheduler_scheduling_cycle_duration_seconds", Help: "Duration of a scheduling cycle (not binding).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_scheduler_pending_pods", Help: "Pods waiting in each part of the scheduling queue.",
		}, []string{"queue"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_scheduler_is_leader", Help: "1 while this replica leads and schedules.",
		}),
		cacheNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_scheduler_cache_nodes", Help: "Nodes in the scheduler's cache.",
		}),
		cachePods: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_scheduler_cache_pods", Help: "Pods in the scheduler's cache, bound or assumed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.bindings, m.preemptions, m.cycleDuration, m.pending, m.leader, m.cacheNodes, m.cachePods)
	}
	return m
}
