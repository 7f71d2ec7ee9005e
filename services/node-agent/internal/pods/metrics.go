package pods

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pod workers' Prometheus metrics.
type Metrics struct {
	// Pods is the number of pods with a worker.
	Pods prometheus.GaugeFunc
	// ContainerStarts counts container starts by result (ok, error).
	ContainerStarts *prometheus.CounterVec
	// ContainerRestarts counts restarts after exits and liveness failures.
	ContainerRestarts prometheus.Counter
	// ImagePulls counts image ensures by result (ok, error).
	ImagePulls *prometheus.CounterVec
	// PodStartSeconds is the time from a worker's first sight of a pod to
	// all its containers running.
	PodStartSeconds prometheus.Histogram
	// SyncSeconds is the duration of one pod sync.
	SyncSeconds prometheus.Histogram
	// PhaseSeconds times the successful steps of starting a pod, by phase:
	// pull, sandbox, create and start.
	PhaseSeconds *prometheus.HistogramVec
}

// NewMetrics creates the metrics of m and registers them with reg.
func (m *Manager) NewMetrics(reg prometheus.Registerer) *Metrics {
	mt := &Metrics{
		Pods: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bosun_node_agent_pods", Help: "Pods bound to this node that have a worker.",
		}, func() float64 { return float64(m.Count()) }),
		ContainerStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_node_agent_container_starts_total", Help: "Container starts by result (ok, error).",
		}, []string{"result"}),
		ContainerRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bosun_node_agent_container_restarts_total", Help: "Containers restarted after they exited or failed their liveness probe.",
		}),
		ImagePulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_node_agent_image_ensures_total", Help: "Images made present for containers, by result (ok, error).",
		}, []string{"result"}),
		PodStartSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bosun_node_agent_pod_start_seconds", Help: "Time from a pod's first sync to all its containers running.",
			Buckets: prometheus.ExponentialBuckets(0.025, 2, 12),
		}),
		SyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bosun_node_agent_pod_sync_seconds", Help: "Duration of one pod sync.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		PhaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bosun_node_agent_pod_start_phase_seconds", Help: "Duration of the successful steps of starting a pod, by phase: pull, sandbox, create, start.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"phase"}),
	}
	if reg != nil {
		reg.MustRegister(mt.Pods, mt.ContainerStarts, mt.ContainerRestarts, mt.ImagePulls, mt.PodStartSeconds, mt.SyncSeconds, mt.PhaseSeconds)
	}
	m.metrics = mt
	return mt
}
