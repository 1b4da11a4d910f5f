package judge

import (
	"math"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Issue 14, finding 9: when both versions' p99 fall in the +Inf bucket,
// histogram_quantile returns +Inf for both, Inf-Inf is NaN, and a NaN
// comparison is false: the relative judge said Pass. A value that is NaN
// or infinite on either side is Inconclusive in every judge, never Pass.
func TestNonFiniteValuesAreNeverPass(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, tc := range []struct {
		name string
		got  func() v1alpha1.MetricResult
		msg  string
	}{
		{"relative increase, both p99 in the +Inf bucket", func() v1alpha1.MetricResult {
			return Relative(v1alpha1.RelativeJudge{MaxIncrease: f(50)}, Values{Candidate: inf, Stable: inf, CandidateSamples: -1})
		}, "+Inf"},
		{"relative ratio, both +Inf", func() v1alpha1.MetricResult {
			return Relative(v1alpha1.RelativeJudge{MaxRatio: f(1.2)}, Values{Candidate: inf, Stable: inf, CandidateSamples: -1})
		}, "+Inf"},
		{"relative increase, stable +Inf", func() v1alpha1.MetricResult {
			return Relative(v1alpha1.RelativeJudge{MaxIncrease: f(50)}, Values{Candidate: 120, Stable: inf, CandidateSamples: -1})
		}, "stable's value is +Inf"},
		{"relative ratio, stable -Inf", func() v1alpha1.MetricResult {
			return Relative(v1alpha1.RelativeJudge{MaxRatio: f(1.2)}, Values{Candidate: 1, Stable: math.Inf(-1), CandidateSamples: -1})
		}, "-Inf"},
		{"relative increase, candidate +Inf", func() v1alpha1.MetricResult {
			return Relative(v1alpha1.RelativeJudge{MaxIncrease: f(50)}, Values{Candidate: inf, Stable: 100, CandidateSamples: -1})
		}, "candidate's value is +Inf"},
		{"threshold min, candidate +Inf", func() v1alpha1.MetricResult {
			return Threshold(v1alpha1.ThresholdJudge{Min: f(0.9)}, Values{Candidate: inf, Stable: 1, CandidateSamples: -1})
		}, "+Inf"},
		{"threshold max, candidate -Inf", func() v1alpha1.MetricResult {
			return Threshold(v1alpha1.ThresholdJudge{Max: f(300)}, Values{Candidate: math.Inf(-1), CandidateSamples: -1})
		}, "-Inf"},
		{"threshold NaN", func() v1alpha1.MetricResult {
			return Threshold(v1alpha1.ThresholdJudge{Max: f(300)}, Values{Candidate: nan, CandidateSamples: -1})
		}, "no value"},
		{"sample ratio, +Inf requests", func() v1alpha1.MetricResult {
			return SampleRatio(v1alpha1.SampleRatioJudge{}, map[string]float64{"v1": inf, "v2": 1000}, map[string]int32{"v1": 90, "v2": 10}, "v2", 0)
		}, "+Inf"},
		{"drift, +Inf bucket count", func() v1alpha1.MetricResult {
			return Drift(v1alpha1.DriftJudge{}, []float64{1000, 3000, inf, 2000}, []float64{1000, 3000, 4000, 2000}, 0)
		}, "+Inf"},
		{"drift, NaN bucket count", func() v1alpha1.MetricResult {
			return Drift(v1alpha1.DriftJudge{}, []float64{1000, 3000, 4000, 2000}, []float64{1000, nan, 4000, 2000}, 0)
		}, "NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.got()
			if got.Verdict != v1alpha1.VerdictInconclusive || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("got %s %q; want Inconclusive saying %q", got.Verdict, got.Message, tc.msg)
			}
		})
	}
}
