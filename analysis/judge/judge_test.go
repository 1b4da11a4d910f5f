package judge

import (
	"math"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/analysis/stats"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func f(v float64) *float64 { return &v }

func TestThreshold(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    v1alpha1.ThresholdJudge
		v    Values
		want v1alpha1.Verdict
		msg  string
	}{
		{"within max", v1alpha1.ThresholdJudge{Max: f(300)}, Values{Candidate: 120, CandidateSamples: 500, MinSamples: 100}, v1alpha1.VerdictPass, "within"},
		{"above max", v1alpha1.ThresholdJudge{Max: f(300)}, Values{Candidate: 301, CandidateSamples: 500, MinSamples: 100}, v1alpha1.VerdictFail, "above the maximum"},
		{"below min", v1alpha1.ThresholdJudge{Min: f(0.9)}, Values{Candidate: 0.5, CandidateSamples: -1}, v1alpha1.VerdictFail, "below the minimum"},
		{"NaN is never pass or fail", v1alpha1.ThresholdJudge{Max: f(300)}, Values{Candidate: math.NaN(), CandidateSamples: 500}, v1alpha1.VerdictInconclusive, "no value"},
		{"too few samples", v1alpha1.ThresholdJudge{Max: f(300)}, Values{Candidate: 1000, CandidateSamples: 20, MinSamples: 100}, v1alpha1.VerdictInconclusive, "80 more"},
		{"no sample query skips minSamples", v1alpha1.ThresholdJudge{Max: f(300)}, Values{Candidate: 1, CandidateSamples: -1, MinSamples: 100}, v1alpha1.VerdictPass, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Threshold(tc.j, tc.v)
			if got.Verdict != tc.want || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("got %s %q, want %s containing %q", got.Verdict, got.Message, tc.want, tc.msg)
			}
			if got.Threshold == "" {
				t.Error("threshold text missing")
			}
			if tc.want == v1alpha1.VerdictInconclusive && tc.v.CandidateSamples >= 0 && tc.v.CandidateSamples < tc.v.MinSamples && got.SamplesNeeded == nil {
				t.Error("samples needed missing")
			}
		})
	}
}

func TestRelative(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    v1alpha1.RelativeJudge
		v    Values
		want v1alpha1.Verdict
	}{
		{"ratio within", v1alpha1.RelativeJudge{MaxRatio: f(1.2)}, Values{Candidate: 110, Stable: 100}, v1alpha1.VerdictPass},
		{"ratio above", v1alpha1.RelativeJudge{MaxRatio: f(1.2)}, Values{Candidate: 130, Stable: 100}, v1alpha1.VerdictFail},
		{"both zero", v1alpha1.RelativeJudge{MaxRatio: f(1.2)}, Values{Candidate: 0, Stable: 0}, v1alpha1.VerdictPass},
		{"stable zero", v1alpha1.RelativeJudge{MaxRatio: f(1.2)}, Values{Candidate: 1, Stable: 0}, v1alpha1.VerdictFail},
		{"difference within", v1alpha1.RelativeJudge{MaxIncrease: f(10)}, Values{Candidate: 105, Stable: 100}, v1alpha1.VerdictPass},
		{"difference above", v1alpha1.RelativeJudge{MaxIncrease: f(10)}, Values{Candidate: 111, Stable: 100}, v1alpha1.VerdictFail},
		{"stable missing", v1alpha1.RelativeJudge{MaxIncrease: f(10)}, Values{Candidate: 111, Stable: math.NaN()}, v1alpha1.VerdictInconclusive},
		{"candidate missing", v1alpha1.RelativeJudge{MaxIncrease: f(10)}, Values{Candidate: math.NaN(), Stable: 1}, v1alpha1.VerdictInconclusive},
		{"neither bound", v1alpha1.RelativeJudge{}, Values{Candidate: 1, Stable: 1}, v1alpha1.VerdictError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Relative(tc.j, tc.v); got.Verdict != tc.want {
				t.Errorf("got %s (%s), want %s", got.Verdict, got.Message, tc.want)
			}
		})
	}
}

func TestSequential(t *testing.T) {
	j := v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}
	for _, tc := range []struct {
		name       string
		j          v1alpha1.SequentialJudge
		in         CountsInput
		want       v1alpha1.Verdict
		wantNeeded bool
	}{
		{"regression", j, CountsInput{Candidate: stats.Counts{Bad: 40, Total: 1000}, Stable: stats.Counts{Bad: 500, Total: 100000}}, v1alpha1.VerdictFail, false},
		{"healthy with evidence", j, CountsInput{Candidate: stats.Counts{Bad: 100, Total: 20000}, Stable: stats.Counts{Bad: 1000, Total: 200000}}, v1alpha1.VerdictPass, false},
		{"not enough yet", j, CountsInput{Candidate: stats.Counts{Bad: 1, Total: 300}, Stable: stats.Counts{Bad: 150, Total: 30000}}, v1alpha1.VerdictInconclusive, true},
		{"below minSamples", j, CountsInput{Candidate: stats.Counts{Bad: 90, Total: 90}, Stable: stats.Counts{Bad: 5, Total: 1000}, MinSamples: 100}, v1alpha1.VerdictInconclusive, true},
		{"no stable traffic", j, CountsInput{Candidate: stats.Counts{Bad: 1, Total: 500}}, v1alpha1.VerdictInconclusive, false},
		{"previous p-value carries", j, CountsInput{Candidate: stats.Counts{Bad: 1, Total: 300}, Stable: stats.Counts{Bad: 150, Total: 30000},
			Previous: &v1alpha1.MetricResult{PValue: f(0.0001)}}, v1alpha1.VerdictFail, false},
		{"earlier steps count", j, CountsInput{Candidate: stats.Counts{Bad: 8, Total: 500}, Stable: stats.Counts{Bad: 250, Total: 50000}, Step: 1,
			Steps: []stats.Segment{{Candidate: stats.Counts{Bad: 8, Total: 500}, Stable: stats.Counts{Bad: 250, Total: 50000}}}}, v1alpha1.VerdictFail, false},
		{"each step alone is not enough", j, CountsInput{Candidate: stats.Counts{Bad: 8, Total: 500}, Stable: stats.Counts{Bad: 250, Total: 50000}, Step: 1}, v1alpha1.VerdictInconclusive, true},
		{"bad confidence", v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.3}, CountsInput{}, v1alpha1.VerdictError, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Sequential(tc.j, tc.in)
			if got.Verdict != tc.want {
				t.Fatalf("got %s (%s), want %s", got.Verdict, got.Message, tc.want)
			}
			if tc.wantNeeded && (got.SamplesNeeded == nil || *got.SamplesNeeded <= 0) {
				t.Errorf("want SamplesNeeded, got %+v", got)
			}
			if tc.want == v1alpha1.VerdictFail || tc.want == v1alpha1.VerdictPass {
				if got.PValue == nil || got.Lower == nil || got.Upper == nil || got.Value == nil || got.Baseline == nil {
					t.Errorf("evidence missing: %+v", got)
				}
			}
		})
	}
}

func TestSlowCounts(t *testing.T) {
	h := map[float64]float64{100: 90, 250: 97, 500: 99, math.Inf(1): 100}
	c, bound, ok := SlowCounts(h, 300)
	if !ok || bound != 250 || c.Bad != 3 || c.Total != 100 {
		t.Errorf("got %+v bound %v ok %v; want 3 of 100 slower than 250", c, bound, ok)
	}
	if _, _, ok := SlowCounts(map[float64]float64{100: 1}, 300); ok {
		t.Error("histogram without +Inf accepted")
	}
	if _, _, ok := SlowCounts(h, 10); ok {
		t.Error("SLO below the first bucket accepted")
	}
}

func TestSampleRatioJudge(t *testing.T) {
	w := map[string]int32{"v1": 90, "v2": 10}
	for _, tc := range []struct {
		name string
		obs  map[string]float64
		want v1alpha1.Verdict
		msg  string
	}{
		{"split as set", map[string]float64{"v1": 9000, "v2": 1000}, v1alpha1.VerdictPass, "matches"},
		{"mesh ignores weights", map[string]float64{"v1": 5000, "v2": 5000}, v1alpha1.VerdictFail, "mesh is not applying the weights"},
		{"too few", map[string]float64{"v1": 30, "v2": 2}, v1alpha1.VerdictInconclusive, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SampleRatio(v1alpha1.SampleRatioJudge{}, tc.obs, w, "v2", 0)
			if got.Verdict != tc.want || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("got %s %q", got.Verdict, got.Message)
			}
		})
	}
}

func TestDriftJudge(t *testing.T) {
	base := []float64{1000, 3000, 4000, 2000}
	for _, tc := range []struct {
		name string
		c, s []float64
		want v1alpha1.Verdict
	}{
		{"same distribution", base, base, v1alpha1.VerdictPass},
		{"drifted", []float64{3000, 4000, 2000, 1000}, base, v1alpha1.VerdictFail},
		{"small and noisy", []float64{3, 1, 1, 2}, []float64{10, 30, 40, 20}, v1alpha1.VerdictInconclusive},
		{"candidate empty", []float64{0, 0, 0, 0}, base, v1alpha1.VerdictInconclusive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Drift(v1alpha1.DriftJudge{}, tc.c, tc.s, 0); got.Verdict != tc.want {
				t.Errorf("got %s (%s), want %s", got.Verdict, got.Message, tc.want)
			}
		})
	}
}
