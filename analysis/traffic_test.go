package analysis

import (
	"context"
	"math"
	"net/http/httptest"
	"strings"
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
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := promserver.Start(ctx, promserver.Config{ScrapeInterval: time.Second, Targets: []string{strings.TrimPrefix(target.URL, "http://")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
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
