package analysis

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func seqSpec(budget *float64) *v1alpha1.Analysis {
	return &v1alpha1.Analysis{Interval: metav1.Duration{Duration: 30 * time.Second}, MinSamples: 100, Metrics: []v1alpha1.Metric{
		{Name: "error-rate", Template: "istio-error-rate", Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, ExposureBudget: budget}},
		{Name: "p99", Template: "istio-latency-p99", Threshold: &v1alpha1.ThresholdJudge{Max: f64(300)}},
	}}
}

// seq is a sequential result whose step saw rps requests per second for
// 10s and whose increase is at most upper.
func seq(v v1alpha1.Verdict, rps int64, upper float64) v1alpha1.MetricResult {
	return v1alpha1.MetricResult{Name: "error-rate", Verdict: v, Upper: &upper, CandidateSamples: 5000,
		Evidence: &v1alpha1.StepEvidence{Candidate: v1alpha1.EventCounts{Total: rps}, Stable: v1alpha1.EventCounts{Total: 9 * rps},
			Window: metav1.Duration{Duration: 10 * time.Second}}}
}

// leaning makes a result whose candidate is observed more than maxIncrease
// (0.5 points) worse than stable.
func leaning(m v1alpha1.MetricResult) v1alpha1.MetricResult {
	m.Value, m.Baseline = f64(0.02), f64(0.005)
	return m
}

func TestAdvance(t *testing.T) {
	p99 := v1alpha1.MetricResult{Name: "p99", Verdict: v1alpha1.VerdictPass, CandidateSamples: 5000}
	p99Starved := v1alpha1.MetricResult{Name: "p99", Verdict: v1alpha1.VerdictInconclusive, CandidateSamples: 30}
	round := func(ms ...v1alpha1.MetricResult) v1alpha1.AnalysisRound {
		return v1alpha1.AnalysisRound{Verdict: RoundVerdict(ms), Metrics: ms}
	}
	zero := 0.0
	for _, tc := range []struct {
		name       string
		spec       *v1alpha1.Analysis
		r          v1alpha1.AnalysisRound
		age        time.Duration
		next       int32
		nextIsLast bool
		want       string
	}{
		{"pass after the dwell", seqSpec(nil), round(seq(v1alpha1.VerdictPass, 1000, 0.001), p99), MinDwell, 25, false, AdvanceEvidence},
		{"pass before the dwell", seqSpec(nil), round(seq(v1alpha1.VerdictPass, 1000, 0.001), p99), MinDwell - time.Second, 25, false, ""},
		{"pass onto the last step", seqSpec(nil), round(seq(v1alpha1.VerdictPass, 1000, 0.001), p99), MinDwell, 100, true, AdvanceEvidence},
		// 1,000 requests/s at 25% for one look (5s) is 1,250 candidate
		// requests; with the increase at most 1%, 12.5 extra bad events:
		// within the default 25, not within 10.
		{"within the budget", seqSpec(nil), round(seq(v1alpha1.VerdictInconclusive, 1000, 0.01), p99), MinDwell, 25, false, AdvanceBudget},
		{"over a smaller budget", seqSpec(f64(10)), round(seq(v1alpha1.VerdictInconclusive, 1000, 0.01), p99), MinDwell, 25, false, ""},
		{"budget 0 waits for evidence", seqSpec(&zero), round(seq(v1alpha1.VerdictInconclusive, 1000, 0.01), p99), time.Hour, 25, false, ""},
		{"no evidence at all at high traffic", seqSpec(nil), round(seq(v1alpha1.VerdictInconclusive, 1000, 1), p99), MinDwell, 5, false, ""},
		// At 1 request/s a look at 50% serves 2.5 requests: even if every
		// one failed, within the budget.
		{"no evidence at all at 1 request/s", seqSpec(nil), round(seq(v1alpha1.VerdictInconclusive, 1, 1), p99), MinDwell, 50, false, AdvanceBudget},
		{"no traffic at all", seqSpec(nil), round(seq(v1alpha1.VerdictInconclusive, 0, 1), p99), MinDwell, 50, false, ""},
		{"the evidence leans toward a regression", seqSpec(nil), round(leaning(seq(v1alpha1.VerdictInconclusive, 1, 1)), p99), MinDwell, 50, false, ""},
		{"never onto the last step without a pass", seqSpec(nil), round(seq(v1alpha1.VerdictInconclusive, 1, 0)), MinDwell, 100, true, ""},
		{"a failure holds", seqSpec(nil), round(seq(v1alpha1.VerdictInconclusive, 1, 0), v1alpha1.MetricResult{Name: "p99", Verdict: v1alpha1.VerdictFail}), time.Hour, 25, false, ""},
		{"a starved fixed-sample judge waits for minStepDuration", seqSpec(nil), round(seq(v1alpha1.VerdictInconclusive, 1, 0), p99Starved), MinDwell, 25, false, ""},
		{"then moves on for evidence", seqSpec(nil), round(seq(v1alpha1.VerdictInconclusive, 1, 0), p99Starved), time.Minute, 25, false, AdvanceLowTraffic},
		{"without a sequential judge a pass waits for minStepDuration", &v1alpha1.Analysis{MinSamples: 100, Metrics: []v1alpha1.Metric{{Name: "p99"}}}, round(p99), 30 * time.Second, 25, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Advance(StepInput{Round: tc.r, Spec: tc.spec, Age: tc.age, NextWeight: tc.next, NextIsLast: tc.nextIsLast})
			if got != tc.want {
				t.Fatalf("Advance = %q (%s), want %q", got, why, tc.want)
			}
			if got == AdvanceBudget && !strings.Contains(why, "within the budget of 25") {
				t.Errorf("reason %q does not say what the budget allowed", why)
			}
		})
	}
}

// A minStepDuration that the spec sets is the least time at a step, even
// for a rollout whose evidence is in: a person asked for it.
func TestAdvanceHonoursASetMinStepDuration(t *testing.T) {
	pass := v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictPass, Metrics: []v1alpha1.MetricResult{seq(v1alpha1.VerdictPass, 1000, 0.001)}}
	in := StepInput{Round: pass, Spec: seqSpec(nil), Age: 30 * time.Second, MinStepDuration: time.Minute, NextWeight: 25}
	if got, _ := Advance(in); got != "" {
		t.Fatalf("Advance at 30s with minStepDuration 1m = %q, want a hold", got)
	}
	in.Age = time.Minute
	if got, _ := Advance(in); got != AdvanceEvidence {
		t.Fatalf("Advance at 1m with minStepDuration 1m = %q, want %q", got, AdvanceEvidence)
	}
	for _, tc := range []struct {
		spec    *v1alpha1.Analysis
		minStep time.Duration
		want    time.Duration
	}{
		{seqSpec(nil), 0, MinDwell},
		{seqSpec(nil), 2 * time.Second, 2 * time.Second},
		{&v1alpha1.Analysis{Metrics: []v1alpha1.Metric{{Name: "p99"}}}, 0, DefaultMinStepDuration},
		{nil, 0, DefaultMinStepDuration},
		{nil, 10 * time.Second, 10 * time.Second},
	} {
		if got := StepDwell(tc.spec, tc.minStep); got != tc.want {
			t.Errorf("StepDwell(%v, %v) = %v, want %v", tc.spec != nil && EvidenceDriven(tc.spec), tc.minStep, got, tc.want)
		}
	}
}

func TestLookPeriod(t *testing.T) {
	iv := func(d time.Duration, seq bool) *v1alpha1.Analysis {
		a := &v1alpha1.Analysis{Interval: metav1.Duration{Duration: d}, Metrics: []v1alpha1.Metric{{Name: "p99"}}}
		if seq {
			a.Metrics = append(a.Metrics, v1alpha1.Metric{Name: "errors", Sequential: &v1alpha1.SequentialJudge{}})
		}
		return a
	}
	for _, tc := range []struct {
		spec *v1alpha1.Analysis
		want time.Duration
	}{
		{iv(30*time.Second, true), 5 * time.Second},
		{iv(2*time.Second, true), 2 * time.Second},
		{iv(30*time.Second, false), 30 * time.Second},
		{iv(0, false), 30 * time.Second},
		{nil, 30 * time.Second},
	} {
		if got := LookPeriod(tc.spec); got != tc.want {
			t.Errorf("LookPeriod(%+v) = %s, want %s", tc.spec, got, tc.want)
		}
	}
}

func TestEvidenceStart(t *testing.T) {
	b := time.Unix(100000, 0) // a 5s boundary
	for _, tc := range []struct {
		start, want time.Time
	}{
		{b, b},
		{b.Add(300 * time.Millisecond), b}, // a step a look advanced
		{b.Add(time.Second), b},            // still within the slack
		{b.Add(1100 * time.Millisecond), b.Add(5e9)}, // a step started by a person
		{b.Add(4900 * time.Millisecond), b.Add(5e9)},
	} {
		if got := EvidenceStart(tc.start, 5*time.Second); !got.Equal(tc.want) {
			t.Errorf("EvidenceStart(%s) = %s, want %s", tc.start.Sub(b), got.Sub(b), tc.want.Sub(b))
		}
	}
}
