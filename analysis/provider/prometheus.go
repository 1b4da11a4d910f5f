package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Defaults of PrometheusConfig.
const (
	// DefaultTimeout bounds a query when PrometheusConfig.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxResponseBytes bounds a response body (after decompression)
	// when PrometheusConfig.MaxResponseBytes is zero: 8 MiB holds the
	// JSON of some 20,000 series with a dozen labels each.
	DefaultMaxResponseBytes = 8 << 20
	// DefaultMaxSeries bounds the series of one result when
	// PrometheusConfig.MaxSeries is zero. A per-rollout query returns a
	// few series per version; a batched one (one query for every rollout
	// of the mesh) returns some per (namespace, service, version), times
	// the buckets of a histogram: 10,000 leaves room for a few hundred
	// services and stops {__name__=~".+"} long before it fills memory.
	DefaultMaxSeries = 10000
)

// PrometheusConfig says how to reach a Prometheus HTTP API.
type PrometheusConfig struct {
	// Address is the base URL, e.g. http://prometheus.monitoring:9090.
	Address string
	// Timeout bounds each query, on the client and as Prometheus's own
	// query timeout. DefaultTimeout when zero.
	Timeout time.Duration
	// HTTP is how to connect: basic auth, authorization, OAuth2, TLS
	// (CA, client certificate), proxy and extra headers, in Prometheus's
	// own format (what a scrape config or remote_write takes), so users
	// write what they already know. Files it names (password_file,
	// credentials_file, ca_file, cert_file, ...) are re-read as Prometheus
	// re-reads them, so rotated credentials take effect without a restart.
	// The zero value sends no credentials and follows no redirects;
	// config.DefaultHTTPClientConfig is what Prometheus uses by default.
	HTTP config.HTTPClientConfig
	// MaxResponseBytes bounds the body of a response, counted after
	// decompression; a larger one makes the query an error wrapping
	// ErrTooLarge, never a truncated result. DefaultMaxResponseBytes when
	// zero.
	MaxResponseBytes int64
	// MaxSeries bounds the series of one result; more is an error wrapping
	// ErrTooLarge. DefaultMaxSeries when zero.
	MaxSeries int
	// Metrics records queries; nil records nothing.
	Metrics *Metrics
}

// Prometheus runs instant queries against a Prometheus server.
type Prometheus struct {
	api     promv1.API
	http    *http.Client
	address string
	timeout time.Duration
	// maxSeries bounds a result; the body's bound is in http's transport.
	maxSeries int
	metrics   *Metrics
}

// NewPrometheus checks cfg and builds a client. It does not contact the
// server; files that cfg.HTTP names must exist.
func NewPrometheus(cfg PrometheusConfig) (*Prometheus, error) {
	if err := CheckAddress(cfg.Address); err != nil {
		return nil, err
	}
	// Validate normalises (bearer_token becomes authorization) as well as
	// checks: work on a copy so the caller's config is left as written.
	hc := cfg.HTTP
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus http client config: %w", err)
	}
	httpClient, err := config.NewClientFromConfig(hc, "fulcrum-prometheus", config.WithUserAgent("fulcrum"))
	if err != nil {
		return nil, fmt.Errorf("prometheus http client config: %w", err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxBytes, maxSeries := cfg.MaxResponseBytes, cfg.MaxSeries
	if maxBytes <= 0 {
		maxBytes = DefaultMaxResponseBytes
	}
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	httpClient.Transport = &cappedTransport{next: httpClient.Transport, max: maxBytes}
	client, err := api.NewClient(api.Config{Address: cfg.Address, Client: httpClient})
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	return &Prometheus{api: promv1.NewAPI(client), http: httpClient, address: cfg.Address, timeout: timeout, maxSeries: maxSeries, metrics: cfg.Metrics}, nil
}

// CheckAddress accepts an http(s) base URL with a host.
func CheckAddress(address string) error {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("prometheus address %q: want an http(s) URL such as http://prometheus.monitoring:9090", address)
	}
	return nil
}

// Close releases the client's idle connections; queries still work after
// it (they open new ones). Callers that drop a client call it so a cache
// eviction does not leave connections open until the server closes them.
func (p *Prometheus) Close() { p.http.CloseIdleConnections() }

// Address is the server's base URL (the provider label of its metrics).
func (p *Prometheus) Address() string { return p.address }

// Query implements Provider.
func (p *Prometheus) Query(ctx context.Context, query string, at time.Time) ([]Sample, error) {
	start := time.Now()
	out, err := p.query(ctx, query, at)
	p.metrics.observe(p.address, time.Since(start).Seconds(), err)
	return out, err
}

func (p *Prometheus) query(ctx context.Context, query string, at time.Time) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	val, _, _, err := p.api.Query(ctx, query, at, promv1.WithTimeout(p.timeout))
	if err != nil {
		return nil, &QueryError{Kind: classify(err), Provider: p.address, Query: query, Err: err}
	}
	var out []Sample
	switch v := val.(type) {
	case model.Vector:
		if len(v) > p.maxSeries {
			return nil, &QueryError{Kind: ErrTooLarge, Provider: p.address, Query: query,
				Err: fmt.Errorf("the query returned %d series, more than the cap of %d (--prometheus-max-series): aggregate it (sum by (...)) to the labels the judge needs", len(v), p.maxSeries)}
		}
		out = make([]Sample, 0, len(v))
		for _, s := range v {
			labels := make(map[string]string, len(s.Metric))
			for k, lv := range s.Metric {
				labels[string(k)] = string(lv)
			}
			out = append(out, Sample{Labels: labels, Value: float64(s.Value)})
		}
	case *model.Scalar:
		if !math.IsNaN(float64(v.Value)) {
			out = []Sample{{Labels: map[string]string{}, Value: float64(v.Value)}}
		}
	default:
		return nil, &QueryError{Kind: ErrBadQuery, Provider: p.address, Query: query,
			Err: fmt.Errorf("result is a %s; want an instant vector, one series per version", val.Type())}
	}
	if len(out) == 0 {
		return nil, &QueryError{Kind: ErrNoData, Provider: p.address, Query: query}
	}
	return out, nil
}

// classify maps a client error to a failure kind. Prometheus answers
// bad_data (400) and execution errors (422) for queries it cannot run;
// everything else (connection, TLS, auth, timeout, 5xx) means the server
// cannot serve this controller now.
func classify(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return ErrTooLarge
	}
	var pe *promv1.Error
	if errors.As(err, &pe) && (pe.Type == promv1.ErrBadData || pe.Type == promv1.ErrExec) {
		return ErrBadQuery
	}
	return ErrUnreachable
}
