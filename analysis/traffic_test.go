package analysis

import (
	"context"
	"math"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// TestTrafficRateOnRealPrometheus: the model's rate is the sum over its
// versions of what the destinations report, at a known 40 requests/s
// (30 to v1, 10 to v2); the source side's reports and another namespace's
// model do not count, and a model with no series has rate 0.
func TestTrafficRateOnRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_requests_total"},
		[]string{"reporter", "destination_service_namespace", "destination_service_name", "destination_version", "response_code"})
	reg.MustRegister(reqs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := scrapedBy(ctx, t, reg)
	// Counters grow by exact amounts every 100 ms: 30/s to v1 and 10/s to
	// v2 of ml/fraud, plus noise that must not count.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			reqs.WithLabelValues("destination", "ml", "fraud", "v1", "200").Add(3)
			reqs.WithLabelValues("destination", "ml", "fraud", "v2", "500").Add(1)
			reqs.WithLabelValues("source", "ml", "fraud", "v1", "200").Add(3)
			reqs.WithLabelValues("destination", "other", "fraud", "v1", "200").Add(50)
		}
	}()
	engine, err := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := provider.NewPrometheus(provider.PrometheusConfig{Address: srv.URL})
	now := waitScrapes(ctx, t, prom, 8)
	rate, err := engine.TrafficRate(ctx, "ml", "fraud", now)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rate-40) > 4 {
		t.Fatalf("rate %.2f requests/s, want 40 ± 4 (%s)", rate, TrafficQuery("ml", "fraud"))
	}
	if none, err := engine.TrafficRate(ctx, "ml", "absent", now); err != nil || none != 0 {
		t.Fatalf("a model without series: rate %v, err %v; want 0, nil", none, err)
	}
	down, _ := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: "http://127.0.0.1:1", Timeout: time.Second}, Registerer: prometheus.NewRegistry()})
	if _, err := down.TrafficRate(ctx, "ml", "fraud", now); err == nil {
		t.Fatal("an unreachable Prometheus gave a rate, want an error")
	}
	t.Logf("rate %.2f requests/s", rate)
}

// TestWarmthOnRealPrometheus: a version answering 90% of requests in 20 ms
// and 10% in 1.5 s has a p99 in the slow bucket; after the slow answers stop
// and age out of the window, the p99 is fast. Another version's and the
// source side's reports do not count, and a version with no series has no
// p99 and 0 requests.
func TestWarmthOnRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	reg := prometheus.NewRegistry()
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "istio_request_duration_milliseconds", Buckets: []float64{10, 25, 50, 100, 250, 500, 1000, 2500},
	}, []string{"reporter", "destination_service_namespace", "destination_service_name", "destination_version"})
	// waitScrapes reads the scrape time from istio_requests_total.
	reqs := prometheus.NewCounter(prometheus.CounterOpts{Name: "istio_requests_total"})
	reg.MustRegister(lat, reqs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := scrapedBy(ctx, t, reg)
	var slow atomic.Bool
	slow.Store(true)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			reqs.Add(10)
			v2 := lat.WithLabelValues("destination", "ml", "fraud", "v2")
			for i := 0; i < 9; i++ {
				v2.Observe(20)
			}
			if slow.Load() {
				v2.Observe(1500)
			} else {
				v2.Observe(20)
			}
			lat.WithLabelValues("source", "ml", "fraud", "v2").Observe(2000)
			lat.WithLabelValues("destination", "ml", "fraud", "v1").Observe(2000)
		}
	}()
	engine, err := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := provider.NewPrometheus(provider.PrometheusConfig{Address: srv.URL})
	now := waitScrapes(ctx, t, prom, 8)
	const window = 5 * time.Second
	p99, n, err := engine.Warmth(ctx, "ml", "fraud", "v2", window, now)
	if err != nil {
		t.Fatal(err)
	}
	if p99 < 1000 || p99 > 2500 || n < 300 {
		latency, count := WarmthQueries("ml", "fraud", "v2", window)
		t.Fatalf("cold: p99 %.1f ms on %.0f requests, want 1000–2500 ms on ≥ 300 (%s; %s)", p99, n, latency, count)
	}
	t.Logf("cold: p99 %.1f ms on %.0f requests", p99, n)
	slow.Store(false)
	time.Sleep(window + 3*time.Second)
	now = waitScrapes(ctx, t, prom, 1)
	p99, n, err = engine.Warmth(ctx, "ml", "fraud", "v2", window, now)
	if err != nil {
		t.Fatal(err)
	}
	if p99 > 25 || n < 300 {
		t.Fatalf("warm: p99 %.1f ms on %.0f requests, want ≤ 25 ms on ≥ 300", p99, n)
	}
	t.Logf("warm: p99 %.1f ms on %.0f requests", p99, n)
	if p99, n, err := engine.Warmth(ctx, "ml", "fraud", "v3", window, now); err != nil || !math.IsNaN(p99) || n != 0 {
		t.Fatalf("a version without series: p99 %v on %v, err %v; want NaN on 0, nil", p99, n, err)
	}
}

// scrapedBy serves reg's metrics on loopback and starts a real Prometheus
// that scrapes them every second; both stop when the test ends.
func scrapedBy(ctx context.Context, t *testing.T, reg *prometheus.Registry) *promserver.Server {
	t.Helper()
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)
	srv, err := promserver.Start(ctx, promserver.Config{ScrapeInterval: time.Second, Targets: []string{strings.TrimPrefix(target.URL, "http://")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}
