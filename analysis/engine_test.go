package analysis

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// fakeProvider answers by query substring and counts calls.
type fakeProvider struct {
	mu      sync.Mutex
	calls   map[string]int
	answers func(q string) ([]provider.Sample, error)
}

func (f *fakeProvider) Query(_ context.Context, q string, _ time.Time) ([]provider.Sample, error) {
	f.mu.Lock()
	f.calls[q]++
	f.mu.Unlock()
	return f.answers(q)
}

func versions(label string, vals map[string]float64) []provider.Sample {
	var out []provider.Sample
	for v, x := range vals {
		out = append(out, provider.Sample{Labels: map[string]string{label: v}, Value: x})
	}
	return out
}

func f64(v float64) *float64 { return &v }

func request(metrics ...v1alpha1.Metric) Request {
	now := time.Unix(10000, 0)
	return Request{Namespace: "ml", Name: "fraud", Service: "fraud", Stable: "v1", Candidate: "v2",
		Weights: map[string]int32{"v1": 90, "v2": 10}, Spec: &v1alpha1.Analysis{MinSamples: 100, Metrics: metrics},
		WindowStart: now.Add(-5 * time.Minute), Now: now, Step: 1}
}

func TestEngineBatchesAndCombinesVerdicts(t *testing.T) {
	fp := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) {
		const l = "destination_version"
		switch {
		case strings.HasPrefix(q, "(sum") && strings.Contains(q, "5.."): // error rate
			return versions(l, map[string]float64{"v1": 0.005, "v2": 0.05}), nil
		case strings.Contains(q, `response_code=~"5.."`):
			return versions(l, map[string]float64{"v1": 90, "v2": 100}), nil
		case strings.Contains(q, "istio_requests_total"):
			return versions(l, map[string]float64{"v1": 18000, "v2": 2000}), nil
		case strings.Contains(q, "histogram_quantile"):
			return versions(l, map[string]float64{"v1": 120, "v2": 140}), nil
		case strings.Contains(q, "istio_request_duration_milliseconds_count"):
			return versions(l, map[string]float64{"v1": 18000, "v2": 2000}), nil
		}
		return nil, &provider.QueryError{Kind: provider.ErrNoData, Query: q}
	}}
	// The per-rollout path: batching has its own tests (batch_test.go).
	e, err := NewEngine(EngineConfig{Provider: fp, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	req := request(
		v1alpha1.Metric{Name: "error-rate", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}},
		v1alpha1.Metric{Name: "error-rate-threshold", Template: "istio-error-rate", Threshold: &v1alpha1.ThresholdJudge{Max: f64(0.1)}},
		v1alpha1.Metric{Name: "split", Template: "istio-request-count", SampleRatio: &v1alpha1.SampleRatioJudge{}},
		v1alpha1.Metric{Name: "p99", Template: "istio-latency-p99", Threshold: &v1alpha1.ThresholdJudge{Max: f64(300)}},
	)
	round, err := e.Analyze(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]v1alpha1.Verdict{}
	for _, m := range round.Metrics {
		got[m.Name] = m.Verdict
	}
	want := map[string]v1alpha1.Verdict{"error-rate": v1alpha1.VerdictFail, "error-rate-threshold": v1alpha1.VerdictPass,
		"split": v1alpha1.VerdictPass, "p99": v1alpha1.VerdictPass}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s (%+v)", k, got[k], v, round.Metrics)
		}
	}
	if round.Verdict != v1alpha1.VerdictFail || round.Step != 1 || !round.Time.Time.Equal(req.Now) {
		t.Errorf("round %s step %d at %v", round.Verdict, round.Step, round.Time)
	}
	// Distinct queries: requests, errors, error rate, quantile, latency count.
	if len(fp.calls) != 5 {
		t.Errorf("%d distinct queries, want 5: %v", len(fp.calls), fp.calls)
	}
	for q, n := range fp.calls {
		if n != 1 {
			t.Errorf("query ran %d times: %s", n, q)
		}
	}
}

func TestEngineErrorsAndMissingData(t *testing.T) {
	down := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) {
		return nil, &provider.QueryError{Kind: provider.ErrUnreachable, Query: q}
	}}
	empty := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) {
		return nil, &provider.QueryError{Kind: provider.ErrNoData, Query: q}
	}}
	m := v1alpha1.Metric{Name: "p99", Template: "istio-latency-p99", Threshold: &v1alpha1.ThresholdJudge{Max: f64(300)}}
	for _, tc := range []struct {
		name string
		p    provider.Provider
		m    v1alpha1.Metric
		want v1alpha1.Verdict
		msg  string
	}{
		{"provider down", down, m, v1alpha1.VerdictError, "cannot read metrics"},
		{"no data", empty, m, v1alpha1.VerdictInconclusive, "minSamples"},
		{"unknown template", empty, v1alpha1.Metric{Name: "x", Template: "nope", Threshold: m.Threshold}, v1alpha1.VerdictError, "not found"},
		{"judge needs a query the template lacks", empty, v1alpha1.Metric{Name: "x", Template: "istio-request-count", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.01}}, v1alpha1.VerdictError, "badQuery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEngine(EngineConfig{Provider: tc.p})
			if err != nil {
				t.Fatal(err)
			}
			round, err := e.Analyze(context.Background(), request(tc.m))
			if err != nil {
				t.Fatal(err)
			}
			if round.Verdict != tc.want || !strings.Contains(round.Metrics[0].Message, tc.msg) {
				t.Errorf("got %s %q, want %s with %q", round.Verdict, round.Metrics[0].Message, tc.want, tc.msg)
			}
		})
	}
	e, _ := NewEngine(EngineConfig{Provider: empty})
	if _, err := e.Analyze(context.Background(), Request{Stable: "v1", Candidate: "v2"}); err == nil {
		t.Error("nil spec accepted")
	}
	if _, err := NewEngine(EngineConfig{}); err == nil {
		t.Error("engine without a provider or address accepted")
	}
}

func TestRoundVerdict(t *testing.T) {
	r := func(vs ...v1alpha1.Verdict) []v1alpha1.MetricResult {
		out := make([]v1alpha1.MetricResult, len(vs))
		for i, v := range vs {
			out[i].Verdict = v
		}
		return out
	}
	P, F, E, I := v1alpha1.VerdictPass, v1alpha1.VerdictFail, v1alpha1.VerdictError, v1alpha1.VerdictInconclusive
	for _, tc := range []struct {
		in   []v1alpha1.MetricResult
		want v1alpha1.Verdict
	}{
		{r(P, P), P}, {r(P, I), I}, {r(I, E), E}, {r(E, F, I), F}, {nil, I},
	} {
		if got := RoundVerdict(tc.in); got != tc.want {
			t.Errorf("RoundVerdict(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// A sequential metric's test continues over the rollout's completed steps:
// a step that alone is not enough evidence fails with the steps before it,
// and its own counts come back in the result for the controller to keep.
func TestEngineCarriesEvidenceAcrossSteps(t *testing.T) {
	fp := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) {
		const l = "destination_version"
		if strings.Contains(q, `response_code=~"5.."`) {
			return versions(l, map[string]float64{"v1": 90, "v2": 20}), nil
		}
		return versions(l, map[string]float64{"v1": 18000, "v2": 2000}), nil
	}}
	e, err := NewEngine(EngineConfig{Provider: fp, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	m := v1alpha1.Metric{Name: "error-rate", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}}
	alone, err := e.Analyze(context.Background(), request(m))
	if err != nil {
		t.Fatal(err)
	}
	if got := alone.Metrics[0]; got.Verdict != v1alpha1.VerdictInconclusive {
		t.Fatalf("one step alone: %s (%s), want Inconclusive", got.Verdict, got.Message)
	}
	req := request(m)
	same := v1alpha1.StepEvidence{Candidate: v1alpha1.EventCounts{Bad: 20, Total: 2000}, Stable: v1alpha1.EventCounts{Bad: 90, Total: 18000}}
	req.Evidence = []v1alpha1.MetricEvidence{{Metric: "error-rate", Steps: []v1alpha1.StepEvidence{same, same}}}
	round, err := e.Analyze(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := round.Metrics[0]
	if got.Verdict != v1alpha1.VerdictFail || got.CandidateSamples != 6000 || !strings.Contains(got.Message, "over 3 steps") {
		t.Fatalf("with two earlier steps: %s, %d candidate requests (%s); want Fail over 6000", got.Verdict, got.CandidateSamples, got.Message)
	}
	if ev := got.Evidence; ev == nil || ev.Step != 1 || ev.Candidate.Total != 2000 || ev.Stable.Bad != 90 || ev.Window.Duration != 5*time.Minute {
		t.Errorf("the step's own counts: %+v", ev)
	}
}
