package admin

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	streams  prometheus.Gauge
	actions  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_admin_requests_total",
			Help: "Admin API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fulcrum_admin_request_duration_seconds",
			Help:    "Admin API request latency by route pattern (streams: their whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fulcrum_admin_event_streams",
			Help: "Open server-sent event streams.",
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_admin_actions_total",
			Help: "Action requests by action and result (accepted, replayed, refused).",
		}, []string{"action", "result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.streams, m.actions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("admin: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}
