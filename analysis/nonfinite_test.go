package analysis

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/analysis/provider"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Counts that come back NaN or ±Inf make the sequential judge Inconclusive:
// a NaN bad count used to read as 0 bad events, which let a candidate pass.
func TestSequentialNonFiniteCountsAreInconclusive(t *testing.T) {
	const l = "destination_version"
	slo := int64(250)
	for _, tc := range []struct {
		name    string
		m       v1alpha1.Metric
		answers func(q string) []provider.Sample
		msg     string
	}{
		{"NaN bad count", v1alpha1.Metric{Name: "errors", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005}},
			func(q string) []provider.Sample {
				if strings.Contains(q, `response_code=~"5.."`) {
					return versions(l, map[string]float64{"v1": 5000, "v2": math.NaN()})
				}
				return versions(l, map[string]float64{"v1": 1e6, "v2": 1e6})
			}, "bad event count of v2 is NaN"},
		{"+Inf sample count", v1alpha1.Metric{Name: "errors", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005}},
			func(q string) []provider.Sample {
				if strings.Contains(q, `response_code=~"5.."`) {
					return versions(l, map[string]float64{"v1": 5000, "v2": 0})
				}
				return versions(l, map[string]float64{"v1": 1e6, "v2": math.Inf(1)})
			}, "+Inf"},
		{"+Inf histogram bucket", v1alpha1.Metric{Name: "slow", Template: "istio-latency-p99", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, SLOMilliseconds: &slo}},
			func(q string) []provider.Sample {
				if strings.Contains(q, "le") && strings.Contains(q, "_bucket") {
					var out []provider.Sample
					for v, inf := range map[string]float64{"v1": 1e6, "v2": math.Inf(1)} {
						out = append(out, provider.Sample{Labels: map[string]string{l: v, "le": "250"}, Value: 1e6},
							provider.Sample{Labels: map[string]string{l: v, "le": "+Inf"}, Value: inf})
					}
					return out
				}
				return versions(l, map[string]float64{"v1": 1e6, "v2": 1e6})
			}, "+Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := &fakeProvider{calls: map[string]int{}, answers: func(q string) ([]provider.Sample, error) { return tc.answers(q), nil }}
			e, err := NewEngine(EngineConfig{Provider: fp, DisableBatching: true})
			if err != nil {
				t.Fatal(err)
			}
			round, err := e.Analyze(context.Background(), request(tc.m))
			if err != nil {
				t.Fatal(err)
			}
			if got := round.Metrics[0]; got.Verdict != v1alpha1.VerdictInconclusive || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("got %s %q; want Inconclusive saying %q", got.Verdict, got.Message, tc.msg)
			}
		})
	}
}
