package provider

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts queries by provider and result, and times them.
type Metrics struct {
	queries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Query results as recorded in fulcrum_provider_queries_total{result}.
const (
	ResultOK          = "ok"
	ResultNoData      = "no_data"
	ResultBadQuery    = "bad_query"
	ResultUnreachable = "unreachable"
)

// NewMetrics registers fulcrum_provider_queries_total{provider,result} and
// fulcrum_provider_query_duration_seconds{provider} on reg (the server
// passes controller-runtime's metrics.Registry). Registering twice on the
// same registry reuses the collectors already there. A nil reg keeps the
// metrics unregistered.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulcrum_provider_queries_total",
			Help: "Metric provider queries by provider and result (ok, no_data, bad_query, unreachable).",
		}, []string{"provider", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fulcrum_provider_query_duration_seconds",
			Help:    "Time metric provider queries took.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"provider"}),
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.queries); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		m.queries = are.ExistingCollector.(*prometheus.CounterVec)
	}
	if err := reg.Register(m.duration); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
	}
	return m, nil
}

func (m *Metrics) observe(provider string, seconds float64, err error) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(provider).Observe(seconds)
	m.queries.WithLabelValues(provider, ResultOf(err)).Inc()
}

// ResultOf maps a query error to its result label.
func ResultOf(err error) string {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, ErrNoData):
		return ResultNoData
	case errors.Is(err, ErrBadQuery):
		return ResultBadQuery
	default:
		return ResultUnreachable
	}
}
