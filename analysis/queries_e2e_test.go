package analysis

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// TestQueriesOnRealPrometheus (issue 14, findings 3 and 9), against a real
// Prometheus with two namespaces of the same service:
//   - queries written to read another namespace, or every namespace, read
//     only the rollout's after the rewrite, whichever label the template
//     confines by;
//   - a ratio over series per pod is sum(errors)/sum(requests) per
//     version, not the sum of the pods' ratios.
func TestQueriesOnRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	ex := newExporter() // ml/fraud, v1 and v2
	ex.zero("other", "fraud", "v1", "v2")
	// Per-pod counters of a model server, labelled by the scrape with
	// namespace and version.
	reg := prometheus.NewRegistry()
	pl := []string{"namespace", "version", "pod"}
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "model_requests_total"}, pl)
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "model_errors_total"}, pl)
	reg.MustRegister(reqs, errs)
	pods := []struct {
		ns, v, pod string
		n, bad     float64
	}{
		{"ml", "v1", "c", 10000, 50}, {"ml", "v1", "d", 10000, 50},
		{"ml", "v2", "a", 1000, 1}, {"ml", "v2", "b", 100, 50},
		{"other", "v1", "e", 500, 400}, {"other", "v2", "f", 500, 400},
	}
	for _, p := range pods {
		reqs.WithLabelValues(p.ns, p.v, p.pod)
		errs.WithLabelValues(p.ns, p.v, p.pod)
	}
	istio := httptest.NewServer(promhttp.HandlerFor(ex.reg, promhttp.HandlerOpts{}))
	defer istio.Close()
	model := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer model.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute)
	srv, err := promserver.Start(ctx, promserver.Config{ScrapeInterval: time.Second,
		Targets: []string{strings.TrimPrefix(istio.URL, "http://"), strings.TrimPrefix(model.URL, "http://")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	prom, _ := provider.NewPrometheus(provider.PrometheusConfig{Address: srv.URL})
	waitScrapes(ctx, t, prom, 2)
	ex.traffic() // ml/fraud: v1 18,000 requests (90 errors), v2 2,000 (80)
	ex.serve("other", "fraud", "v1", 500000, 0)
	ex.serve("other", "fraud", "v2", 700000, 0)
	for _, p := range pods {
		reqs.WithLabelValues(p.ns, p.v, p.pod).Add(p.n)
		errs.WithLabelValues(p.ns, p.v, p.pod).Add(p.bad)
	}
	now := waitScrapes(ctx, t, prom, 2)

	// Given templates that name another namespace, or none at all.
	mt := func(name string, spec v1alpha1.MetricTemplateSpec) *v1alpha1.MetricTemplate {
		return &v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: name}, Spec: spec}
	}
	otherIstio := `sum by (destination_version) (increase(istio_requests_total{destination_service_namespace="other",destination_service_name="{{.Service}}"}[{{.Window}}]))`
	c := fake.NewClientBuilder().WithScheme(templateScheme(t)).WithObjects(
		mt("other-istio", v1alpha1.MetricTemplateSpec{Query: otherIstio}),
		mt("other-triton", v1alpha1.MetricTemplateSpec{VersionLabel: "version", NamespaceLabel: "namespace",
			Query: `sum by (version) (increase(nv_inference_request_success{namespace=~"other|ml",model="{{.Service}}"}[{{.Window}}]))`}),
		mt("everything", v1alpha1.MetricTemplateSpec{Query: `sum by (destination_version) ({__name__=~".+"})`}),
		mt("pod-ratio", v1alpha1.MetricTemplateSpec{VersionLabel: "version", NamespaceLabel: "namespace",
			Query: `increase(model_errors_total[{{.Window}}]) / increase(model_requests_total[{{.Window}}])`}),
	).Build()
	engine, err := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second},
		Templates: c, AllowInlineQueries: true, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	// The premise: as written, the template reads the other namespace.
	raw, err := prom.Query(ctx, strings.NewReplacer("{{.Service}}", "fraud", "{{.Window}}", "2m").Replace(otherIstio), now)
	if err != nil || len(raw) != 2 || (raw[0].Value < 500000 && raw[1].Value < 500000) {
		t.Fatalf("the query as written: %+v, %v; want other's 500,000 and 700,000 requests", raw, err)
	}

	// When the rollout ml/fraud is analysed.
	limit := &v1alpha1.ThresholdJudge{Max: f64(1e12)}
	req := Request{Namespace: "ml", Name: "fraud", Service: "fraud", Stable: "v1", Candidate: "v2",
		Weights: map[string]int32{"v1": 90, "v2": 10}, WindowStart: start, Now: now,
		Spec: &v1alpha1.Analysis{Metrics: []v1alpha1.Metric{
			{Name: "other-istio", Template: "other-istio", Threshold: limit},
			{Name: "other-triton", Template: "other-triton", Threshold: limit},
			{Name: "inline-every-namespace", Query: `sum by (destination_version) (increase(istio_requests_total[{{.Window}}]))`, Threshold: limit},
			{Name: "everything", Template: "everything", Threshold: limit},
			{Name: "pod-ratio", Template: "pod-ratio", Threshold: limit},
		}}}
	round, err := engine.Analyze(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// Then every value is ml's own, and the ratio is pooled per version.
	res := map[string]v1alpha1.MetricResult{}
	for _, m := range round.Metrics {
		res[m.Name] = m
		t.Logf("%-23s %-12s %s", m.Name, m.Verdict, m.Message)
	}
	for _, tc := range []struct {
		metric           string
		candidate, basis float64
	}{
		{"other-istio", 2000, 18000},
		{"other-triton", 1920, 17910},
		{"inline-every-namespace", 2000, 18000},
		// v2: (1 + 50) / (1,000 + 100), not 1/1,000 + 50/100 = 0.501;
		// v1: 100 / 20,000, not 0.01.
		{"pod-ratio", 51.0 / 1100, 100.0 / 20000},
	} {
		r := res[tc.metric]
		if r.Verdict != v1alpha1.VerdictPass || r.Value == nil || r.Baseline == nil ||
			fmt.Sprintf("%.4f/%.4f", *r.Value, *r.Baseline) != fmt.Sprintf("%.4f/%.4f", tc.candidate, tc.basis) {
			t.Errorf("%s: %s %q; want values %.4f and %.4f", tc.metric, r.Verdict, r.Message, tc.candidate, tc.basis)
		}
	}
	if r := res["everything"]; r.Verdict != v1alpha1.VerdictError || !strings.Contains(r.Message, "matches every metric name") {
		t.Errorf("everything: %s %q; want Error, every metric name refused", r.Verdict, r.Message)
	}
}
