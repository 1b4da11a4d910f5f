package analysis

import (
	"context"
	"net/http/httptest"
	"reflect"
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

// zero creates every series of a second service at 0 before the first
// scrape, as newExporter does for ml/fraud.
func (e *exporter) zero(ns, svc string, versions ...string) {
	for _, v := range versions {
		for _, code := range answerCodes {
			e.reqs.WithLabelValues("destination", ns, svc, v, code[0], code[1])
		}
		e.lat.WithLabelValues("destination", ns, svc, v)
		for _, c := range []*prometheus.CounterVec{e.tritonOK, e.tritonFail, e.tritonDurUS} {
			c.WithLabelValues(ns, svc, v)
		}
		e.score.WithLabelValues(ns, svc, v)
		e.kserve.WithLabelValues(ns, svc, v)
	}
}

// serve adds n requests with errs errors to one version of a service, all
// fast, with scores spread evenly.
func (e *exporter) serve(ns, svc, v string, n, errs int) {
	e.reqs.WithLabelValues("destination", ns, svc, v, "200", "").Add(float64(n - errs))
	e.reqs.WithLabelValues("destination", ns, svc, v, "500", "").Add(float64(errs))
	e.tritonOK.WithLabelValues(ns, svc, v).Add(float64(n - errs))
	e.tritonFail.WithLabelValues(ns, svc, v).Add(float64(errs))
	e.tritonDurUS.WithLabelValues(ns, svc, v).Add(float64(n-errs) * 10000)
	h, k, s := e.lat.WithLabelValues("destination", ns, svc, v), e.kserve.WithLabelValues(ns, svc, v), e.score.WithLabelValues(ns, svc, v)
	for i := range n {
		h.Observe(30)
		k.Observe(0.02)
		s.Observe(float64(i%10)/10 + 0.05)
	}
}

// TestBatchedMatchesPerRolloutOnRealPrometheus: two rollouts, in two
// namespaces, read through one batched query per template query give
// exactly what per-rollout queries give, at half the queries.
func TestBatchedMatchesPerRolloutOnRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	ex := newExporter() // ml/fraud, v1 and v2
	ex.zero("risk", "scoring", "blue", "green")
	target := httptest.NewServer(promhttp.HandlerFor(ex.reg, promhttp.HandlerOpts{}))
	defer target.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	srv, err := promserver.Start(ctx, promserver.Config{ScrapeInterval: time.Second, Targets: []string{strings.TrimPrefix(target.URL, "http://")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	prom, _ := provider.NewPrometheus(provider.PrometheusConfig{Address: srv.URL})
	waitScrapes := func(n int) time.Time { return waitScrapes(ctx, t, prom, n) }
	waitScrapes(2)
	ex.traffic() // ml/fraud: v1 18,000 requests, 0.5% errors; v2 2,000, 4%
	ex.serve("risk", "scoring", "blue", 5000, 10)
	ex.serve("risk", "scoring", "green", 1000, 2)
	// Three scrapes see the traffic; whole seconds make both paths use the
	// same evaluation time and window (a 1s quantum rounds nothing away).
	now := waitScrapes(3).Truncate(time.Second)

	metrics := []v1alpha1.Metric{
		{Name: "error-rate", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}},
		{Name: "error-rate-max", Template: "istio-error-rate", Threshold: &v1alpha1.ThresholdJudge{Max: f64(0.01)}},
		{Name: "split", Template: "istio-request-count", SampleRatio: &v1alpha1.SampleRatioJudge{}},
		{Name: "p99", Template: "istio-latency-p99", Threshold: &v1alpha1.ThresholdJudge{Max: f64(300)}},
		{Name: "triton-errors", Template: "triton-error-rate", Relative: &v1alpha1.RelativeJudge{MaxIncrease: f64(0.01)}},
		{Name: "triton-latency", Template: "triton-latency-mean", Threshold: &v1alpha1.ThresholdJudge{Max: f64(25)}},
		{Name: "kserve", Template: "kserve-latency", Threshold: &v1alpha1.ThresholdJudge{Max: f64(100)}},
		{Name: "drift", Template: "prediction-drift", Drift: &v1alpha1.DriftJudge{MaxPSI: 0.2, Confidence: 0.99}},
	}
	reqs := []Request{
		{Namespace: "ml", Name: "fraud", Service: "fraud", Stable: "v1", Candidate: "v2",
			Weights: map[string]int32{"v1": 90, "v2": 10}, WindowStart: start, Now: now,
			Spec: &v1alpha1.Analysis{MinSamples: 100, Metrics: metrics}},
		{Namespace: "risk", Name: "scoring", Service: "scoring", Stable: "blue", Candidate: "green",
			Weights: map[string]int32{"blue": 83, "green": 17}, WindowStart: start, Now: now,
			Spec: &v1alpha1.Analysis{MinSamples: 100, Metrics: metrics}},
	}
	run := func(disable bool) ([]v1alpha1.AnalysisRound, float64) {
		reg := prometheus.NewRegistry()
		e, err := NewEngine(EngineConfig{Prometheus: provider.PrometheusConfig{Address: srv.URL, Timeout: 5 * time.Second},
			Registerer: reg, DisableBatching: disable, BatchQuantum: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		var out []v1alpha1.AnalysisRound
		for _, r := range reqs {
			round, err := e.Analyze(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, round)
		}
		return out, testutil.ToFloat64(mustCounter(t, reg, srv.URL, provider.ResultOK))
	}
	batched, nb := run(false)
	perRollout, np := run(true)

	// 8 metrics on 6 templates need 13 distinct queries per rollout:
	// istio requests, errors, error rate, p99, latency count; triton rate,
	// totals, latency, successes; kserve p99, count; score buckets, count.
	if np != 26 || nb != 13 {
		t.Errorf("ok queries: %v per rollout, %v batched; want 26 and 13", np, nb)
	}
	for i := range reqs {
		for j, m := range batched[i].Metrics {
			t.Logf("%s/%s %-15s %-12s %s", reqs[i].Namespace, reqs[i].Name, m.Name, m.Verdict, m.Message)
			if !reflect.DeepEqual(m, perRollout[i].Metrics[j]) {
				t.Errorf("%s/%s %s: batched %+v\nper rollout %+v", reqs[i].Namespace, reqs[i].Name, m.Name, m, perRollout[i].Metrics[j])
			}
		}
	}
	// Known counts: each rollout saw only its own service's requests. The
	// evaluation time falls between scrapes, so increase() extrapolates the
	// observed increase to the whole window (both paths alike). The window
	// here is only a few 1s scrapes long, so that factor reaches about 1.25
	// when a scrape lands just inside an edge; counts are bounded loosely,
	// ratios exactly.
	want := []struct {
		verdict    v1alpha1.Verdict // of the round; "" checks only that it is not Fail
		cand, base int64
		errRate    float64
	}{{v1alpha1.VerdictFail, 2000, 18000, 0.04}, {"", 1000, 5000, 0.002}}
	for i, w := range want {
		r := batched[i]
		name := reqs[i].Namespace + "/" + reqs[i].Name
		if (w.verdict != "" && r.Verdict != w.verdict) || (w.verdict == "" && r.Verdict == v1alpha1.VerdictFail) {
			t.Errorf("%s: round %s, want %q (not Fail when empty)", name, r.Verdict, w.verdict)
		}
		for _, m := range r.Metrics {
			if m.Name != "split" && m.Name != "error-rate-max" {
				continue
			}
			if m.CandidateSamples < w.cand || float64(m.CandidateSamples) > 1.5*float64(w.cand) ||
				m.BaselineSamples < w.base || float64(m.BaselineSamples) > 1.5*float64(w.base) {
				t.Errorf("%s %s: samples %d/%d, want %d/%d (up to 50%% extrapolated)", name, m.Name, m.CandidateSamples, m.BaselineSamples, w.cand, w.base)
			}
			ratio := float64(m.CandidateSamples) / float64(m.BaselineSamples)
			if d := ratio - float64(w.cand)/float64(w.base); d > 0.001 || d < -0.001 {
				t.Errorf("%s %s: candidate/stable %v, want %v", name, m.Name, ratio, float64(w.cand)/float64(w.base))
			}
			if m.Name == "error-rate-max" && (m.Value == nil || *m.Value < w.errRate-1e-9 || *m.Value > w.errRate+1e-9) {
				t.Errorf("%s error rate %v, want %v", name, m.Value, w.errRate)
			}
		}
	}
}
