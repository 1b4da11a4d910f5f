package notify

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's Prometheus series. Their labels are sink
// kinds and outcomes, never rollouts or Notifiers: the status of each
// Notifier and rollout carries those.
type metrics struct {
	deliveries *prometheus.CounterVec
	retries    *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	queued     prometheus.GaugeFunc
}

// Results of fulcrum_notify_deliveries_total and reasons of
// fulcrum_notify_dropped_total.
const (
	resultDelivered = "delivered"
	resultFailed    = "failed"

	dropQueueFull = "queue_full"
	dropStale     = "stale"
	dropDuplicate = "duplicate"
	dropLookup    = "lookup_failed"
)

func newMetrics(queued func() float64) *metrics {
	return &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_notify_deliveries_total",
			Help: "Events delivered to a sink (result delivered) or given up on after every retry (result failed), by sink kind.",
		}, []string{"kind", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_notify_retries_total",
			Help: "Retries of a delivery after a failed attempt, by sink kind.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_notify_dropped_total",
			Help: "Events not delivered to any sink: queue_full (the oldest queued event, to make room), stale (older than the dispatcher's max age), duplicate (the same history entry published again), lookup_failed (the Notifiers could not be read).",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fulcrum_notify_request_duration_seconds",
			Help:    "Time of one HTTP request to a sink, answered or not, by sink kind.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12), // 10ms .. ~20s
		}, []string{"kind"}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fulcrum_notify_queue_length",
			Help: "Events waiting for a worker.",
		}, queued),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.deliveries, m.retries, m.dropped, m.latency, m.queued} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
