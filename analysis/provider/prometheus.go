package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// DefaultTimeout bounds a query when PrometheusConfig.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// PrometheusConfig says how to reach a Prometheus HTTP API.
type PrometheusConfig struct {
	// Address is the base URL, e.g. http://prometheus.monitoring:9090.
	Address string
	// Timeout bounds each query, on the client and as Prometheus's own
	// query timeout. DefaultTimeout when zero.
	Timeout time.Duration
	// BearerToken, or BearerTokenFile (re-read on every query so rotated
	// tokens work), is sent as "Authorization: Bearer". At most one of
	// bearer and basic auth.
	BearerToken     string
	BearerTokenFile string
	// BasicAuth username and password.
	Username, Password string
	// CAFile is a PEM bundle that verifies the server's certificate, in
	// addition to none of the system roots. Empty: the system roots.
	CAFile string
	// InsecureSkipVerify turns off certificate checks (tests only).
	InsecureSkipVerify bool
	// Metrics records queries; nil records nothing.
	Metrics *Metrics
}

// Prometheus runs instant queries against a Prometheus server.
type Prometheus struct {
	api     promv1.API
	address string
	timeout time.Duration
	metrics *Metrics
}

// NewPrometheus checks cfg and builds a client. It does not contact the
// server.
func NewPrometheus(cfg PrometheusConfig) (*Prometheus, error) {
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus address %q: want an http(s) URL such as http://prometheus.monitoring:9090", cfg.Address)
	}
	if (cfg.BearerToken != "" || cfg.BearerTokenFile != "") && cfg.Username != "" {
		return nil, errors.New("prometheus auth: set either a bearer token or basic auth, not both")
	}
	if cfg.BearerToken != "" && cfg.BearerTokenFile != "" {
		return nil, errors.New("prometheus auth: set bearerToken or bearerTokenFile, not both")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("prometheus caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("prometheus caFile %s: no PEM certificates found", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	client, err := api.NewClient(api.Config{
		Address:      cfg.Address,
		RoundTripper: &authTransport{next: tr, cfg: cfg},
	})
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	return &Prometheus{api: promv1.NewAPI(client), address: cfg.Address, timeout: timeout, metrics: cfg.Metrics}, nil
}

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
	var pe *promv1.Error
	if errors.As(err, &pe) && (pe.Type == promv1.ErrBadData || pe.Type == promv1.ErrExec) {
		return ErrBadQuery
	}
	return ErrUnreachable
}

type authTransport struct {
	next http.RoundTripper
	cfg  PrometheusConfig
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	token := t.cfg.BearerToken
	if t.cfg.BearerTokenFile != "" {
		b, err := os.ReadFile(t.cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("read bearer token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" && t.cfg.Username == "" {
		return t.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else {
		req.SetBasicAuth(t.cfg.Username, t.cfg.Password)
	}
	return t.next.RoundTrip(req)
}
