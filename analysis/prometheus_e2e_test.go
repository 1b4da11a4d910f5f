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
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// exporter serves the series the built-in templates read, with counts the
// test sets.
type exporter struct {
	reg                                     *prometheus.Registry
	reqs, tritonOK, tritonFail, tritonDurUS *prometheus.CounterVec
	lat, score, kserve                      *prometheus.HistogramVec
}

func newExporter() *exporter {
	e := &exporter{reg: prometheus.NewRegistry()}
	istio := []string{"reporter", "destination_service_namespace", "destination_service_name", "destination_version", "response_code", "grpc_response_status"}
	e.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_requests_total"}, istio)
	e.lat = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "istio_request_duration_milliseconds",
		Buckets: []float64{10, 50, 100, 250, 500, 1000, 5000}}, istio[:4])
	tl := []string{"namespace", "model", "version"}
	e.tritonOK = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_request_success"}, tl)
	e.tritonFail = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_request_failure"}, tl)
	e.tritonDurUS = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nv_inference_request_duration_us"}, tl)
	e.score = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "model_prediction_score",
		Buckets: []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}}, tl)
	e.kserve = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "request_predict_seconds",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1}}, []string{"namespace", "model_name", "version"})
	e.reg.MustRegister(e.reqs, e.lat, e.tritonOK, e.tritonFail, e.tritonDurUS, e.score, e.kserve)
	// Every series exists at 0 before the first scrape, so increase() over
	// a window that starts earlier counts exactly what the test adds.
	for _, v := range []string{"v1", "v2"} {
		for _, code := range answerCodes {
			e.reqs.WithLabelValues("destination", "ml", "fraud", v, code[0], code[1])
		}
		e.lat.WithLabelValues("destination", "ml", "fraud", v)
		for _, c := range []*prometheus.CounterVec{e.tritonOK, e.tritonFail, e.tritonDurUS} {
			c.WithLabelValues("ml", "fraud", v)
		}
		e.score.WithLabelValues("ml", "fraud", v)
		e.kserve.WithLabelValues("ml", "fraud", v)
	}
	return e
}

// answerCodes are the (response_code, grpc_response_status) pairs served:
// HTTP answers, and gRPC calls, which Envoy reports as HTTP 200 with the
// gRPC status beside it (or a 5xx and the status when no upstream answered).
var answerCodes = [][2]string{{"200", ""}, {"500", ""}, {"200", "0"}, {"200", "14"}, {"503", "14"}, {"200", "5"}}

// traffic: stable v1 serves 18,000 requests with 90 errors (0.5%) and
// 50 ms latency; candidate v2 serves 2,000 with 80 errors (4%) and 2% of
// requests at 800 ms. v2's errors are 40 HTTP 500s, 30 gRPC UNAVAILABLE
// answered with HTTP 200 and 10 UNAVAILABLE reported as 503 (one error each,
// not two); 20 of its successes are gRPC NOT_FOUND, a client's error that
// the error rate does not count, and 100 are gRPC OK. Scores: v1 uniform
// over the buckets, v2 shifted high.
func (e *exporter) traffic() {
	add := func(v string, n, errs, slow int) {
		reqs := func(code, grpc string, k int) {
			e.reqs.WithLabelValues("destination", "ml", "fraud", v, code, grpc).Add(float64(k))
		}
		if v == "v2" {
			reqs("200", "", n-errs-120)
			reqs("200", "0", 100)
			reqs("200", "5", 20)
			reqs("500", "", errs-40)
			reqs("200", "14", 30)
			reqs("503", "14", 10)
		} else {
			reqs("200", "", n-errs)
			reqs("500", "", errs)
		}
		h := e.lat.WithLabelValues("destination", "ml", "fraud", v)
		for i := 0; i < n; i++ {
			if i < slow {
				h.Observe(800)
			} else {
				h.Observe(40)
			}
		}
		e.tritonOK.WithLabelValues("ml", "fraud", v).Add(float64(n - errs))
		e.tritonFail.WithLabelValues("ml", "fraud", v).Add(float64(errs))
		e.tritonDurUS.WithLabelValues("ml", "fraud", v).Add(float64(n-errs) * 20000) // 20 ms each
		k := e.kserve.WithLabelValues("ml", "fraud", v)
		s := e.score.WithLabelValues("ml", "fraud", v)
		for i := 0; i < n; i++ {
			k.Observe(0.03)
			x := float64(i%10)/10 + 0.05
			if v == "v2" {
				x = 0.65 + float64(i%4)/10 // 0.65..0.95
			}
			s.Observe(x)
		}
	}
	add("v1", 18000, 90, 0)
	add("v2", 2000, 80, 40)
}

func TestBuiltinTemplatesAgainstRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	ex := newExporter()
	target := httptest.NewServer(promhttp.HandlerFor(ex.reg, promhttp.HandlerOpts{}))
	defer target.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute)
	srv, err := promserver.Start(ctx, promserver.Config{ScrapeInterval: time.Second, Targets: []string{strings.TrimPrefix(target.URL, "http://")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	reg := prometheus.NewRegistry()
	// The per-rollout path; batch_e2e_test.go covers the batched one.
	engine, err := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second}, Registerer: reg, DisableBatching: true, AllowInlineQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := provider.NewPrometheus(provider.PrometheusConfig{Address: srv.URL})
	// Given two scrapes of the zeroed series, when the traffic arrives and
	// two more scrapes see it, then the last scrape's time is exact "now".
	waitScrapes := func(n int) time.Time { return waitScrapes(ctx, t, prom, n) }
	waitScrapes(2)
	ex.traffic()
	now := waitScrapes(2)

	seq := &v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}
	slo := int64(250)
	req := Request{Namespace: "ml", Name: "fraud", Service: "fraud", Stable: "v1", Candidate: "v2",
		Weights: map[string]int32{"v1": 90, "v2": 10}, WindowStart: start, Now: now,
		Spec: &v1alpha1.Analysis{MinSamples: 100, Metrics: []v1alpha1.Metric{
			{Name: "error-rate", Template: "istio-error-rate", Sequential: seq},
			{Name: "error-rate-max", Template: "istio-error-rate", Threshold: &v1alpha1.ThresholdJudge{Max: f64(0.01)}},
			{Name: "split", Template: "istio-request-count", SampleRatio: &v1alpha1.SampleRatioJudge{}},
			{Name: "p50", Template: "istio-latency-p50", Threshold: &v1alpha1.ThresholdJudge{Max: f64(300)}},
			{Name: "p99", Template: "istio-latency-p99", Threshold: &v1alpha1.ThresholdJudge{Max: f64(300)}},
			{Name: "slow-share", Template: "istio-latency-p99", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, SLOMilliseconds: &slo}},
			{Name: "triton-errors", Template: "triton-error-rate", Relative: &v1alpha1.RelativeJudge{MaxIncrease: f64(0.01)}},
			{Name: "triton-latency", Template: "triton-latency-mean", Threshold: &v1alpha1.ThresholdJudge{Max: f64(25)}},
			{Name: "kserve", Template: "kserve-latency", Threshold: &v1alpha1.ThresholdJudge{Max: f64(100)}},
			{Name: "psi", Template: "prediction-psi", Threshold: &v1alpha1.ThresholdJudge{Max: f64(0.2)}},
			{Name: "drift", Template: "prediction-drift", Drift: &v1alpha1.DriftJudge{MaxPSI: 0.2, Confidence: 0.99}},
		}}}
	round, err := engine.Analyze(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]v1alpha1.MetricResult{}
	for _, m := range round.Metrics {
		res[m.Name] = m
		t.Logf("%-15s %-12s %s", m.Name, m.Verdict, m.Message)
	}
	val := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	for _, tc := range []struct {
		metric     string
		verdict    v1alpha1.Verdict
		value      float64 // -1: not checked
		cand, base int64   // samples; 0: not checked
	}{
		{"error-rate", v1alpha1.VerdictFail, 0.04, 2000, 18000},
		{"error-rate-max", v1alpha1.VerdictFail, 0.04, 2000, 18000},
		{"split", v1alpha1.VerdictPass, 0.1, 2000, 18000},
		{"p50", v1alpha1.VerdictPass, -1, 2000, 18000},
		{"p99", v1alpha1.VerdictFail, -1, 2000, 18000},
		{"slow-share", v1alpha1.VerdictFail, 0.02, 2000, 18000},
		{"triton-errors", v1alpha1.VerdictFail, 0.04, 2000, 18000},
		{"triton-latency", v1alpha1.VerdictPass, 20, 1920, 17910},
		{"kserve", v1alpha1.VerdictPass, -1, 2000, 18000},
		{"psi", v1alpha1.VerdictFail, -1, 2000, 18000},
		{"drift", v1alpha1.VerdictFail, -1, 2000, 18000},
	} {
		r := res[tc.metric]
		if r.Verdict != tc.verdict {
			t.Errorf("%s: %s (%s), want %s", tc.metric, r.Verdict, r.Message, tc.verdict)
		}
		if tc.value >= 0 && fmt.Sprintf("%.4f", val(r.Value)) != fmt.Sprintf("%.4f", tc.value) {
			t.Errorf("%s: value %v, want %v", tc.metric, val(r.Value), tc.value)
		}
		if tc.cand > 0 && (r.CandidateSamples != tc.cand || r.BaselineSamples != tc.base) {
			t.Errorf("%s: samples %d/%d, want %d/%d", tc.metric, r.CandidateSamples, r.BaselineSamples, tc.cand, tc.base)
		}
	}
	if v := val(res["p99"].Value); v < 500 || v > 1000 {
		t.Errorf("p99 %v, want within the 500..1000 ms bucket", v)
	}
	if round.Verdict != v1alpha1.VerdictFail {
		t.Errorf("round %s, want Fail", round.Verdict)
	}

	// The split is checked against the weights that were set: 50/50 is not
	// what the mesh applied.
	req.Weights = map[string]int32{"v1": 50, "v2": 50}
	req.Spec = &v1alpha1.Analysis{MinSamples: 100, Metrics: []v1alpha1.Metric{{Name: "split", Template: "istio-request-count", SampleRatio: &v1alpha1.SampleRatioJudge{}}}}
	round, _ = engine.Analyze(ctx, req)
	if m := round.Metrics[0]; m.Verdict != v1alpha1.VerdictFail || !strings.Contains(m.Message, "mesh is not applying the weights") {
		t.Errorf("split against 50/50: %s %s", m.Verdict, m.Message)
	}

	// One query per distinct rendered query per round, serving both
	// subsets: 11 metrics share 15 queries (istio requests, errors, error
	// rate, p50, p99, latency count, latency buckets, triton rate, triton
	// totals, triton latency, triton successes, kserve p99, kserve count,
	// score buckets, score count), then 1 for the split round.
	ok := testutil.ToFloat64(mustCounter(t, reg, srv.URL, provider.ResultOK))
	if ok != 16 {
		t.Errorf("%v ok queries over two rounds, want 15 + 1", ok)
	}

	// A bad inline query is an Error, never Pass or Fail.
	req.Spec = &v1alpha1.Analysis{Metrics: []v1alpha1.Metric{{Name: "broken", Query: "sum(", Threshold: &v1alpha1.ThresholdJudge{Max: f64(1)}}}}
	round, _ = engine.Analyze(ctx, req)
	if round.Verdict != v1alpha1.VerdictError {
		t.Errorf("bad query: round %s, want Error", round.Verdict)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, prov, result string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "fulcrum_provider_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == prov && labels["result"] == result {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "copy"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no fulcrum_provider_queries_total{provider=%q,result=%q}", prov, result)
	return nil
}

// waitScrapes waits until Prometheus has scraped the test's exporter n more
// times (1s apart) and returns the time of the last scrape, so a query at
// that time sees exactly what was exported.
func waitScrapes(ctx context.Context, t *testing.T, prom provider.Provider, n int) time.Time {
	t.Helper()
	lastScrape := func() time.Time {
		s, err := prom.Query(ctx, `max(timestamp(istio_requests_total))`, time.Now())
		if err != nil {
			return time.Time{}
		}
		return time.UnixMilli(int64(s[0].Value * 1000))
	}
	var first time.Time
	for {
		ts := lastScrape()
		if first.IsZero() {
			first = ts
		} else if ts.Sub(first) >= time.Duration(n)*time.Second {
			return ts
		}
		select {
		case <-ctx.Done():
			t.Fatal("Prometheus did not scrape the exporter in time")
		case <-time.After(200 * time.Millisecond):
		}
	}
}
