package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func TestVerdictsAreCountedPerMetricAndForgotten(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	mr := &v1alpha1.ModelRollout{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"}}
	round := &v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictFail, Metrics: []v1alpha1.MetricResult{
		{Name: "error-rate", Verdict: v1alpha1.VerdictFail},
		{Name: "latency-p99", Verdict: v1alpha1.VerdictPass},
	}}
	m.judged(mr, round)
	m.judged(mr, round)
	if got := testutil.ToFloat64(m.verdicts.WithLabelValues("ml", "fraud", "error-rate", "Fail")); got != 2 {
		t.Errorf("error-rate Fail = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.verdicts.WithLabelValues("ml", "fraud", "latency-p99", "Pass")); got != 2 {
		t.Errorf("latency-p99 Pass = %v, want 2", got)
	}
	m.forget("ml", "fraud")
	if n := testutil.CollectAndCount(m.verdicts); n != 0 {
		t.Errorf("%d verdict series left after forget", n)
	}
}

// Each gate run is counted once, when its result first appears in status,
// with how long it took.
func TestGateRunsAreCountedOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := metav1.Now()
	t1 := metav1.NewTime(t0.Add(90e9))
	run := func(id string, outcome v1alpha1.GateOutcome) v1alpha1.GateResult {
		return v1alpha1.GateResult{Name: "load-test", At: v1alpha1.GateEachStep, Type: v1alpha1.GateTypeHTTP, ID: id, Outcome: outcome, StartedAt: t0, FinishedAt: t1}
	}
	before := &v1alpha1.ModelRollout{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "fraud"}}
	after := before.DeepCopy()
	after.Status.Gates = &v1alpha1.GatesStatus{Results: []v1alpha1.GateResult{run("a", v1alpha1.GatePassed)}}
	m.gateResults(before, after)
	later := after.DeepCopy()
	later.Status.Gates.Results = append(later.Status.Gates.Results, run("b", v1alpha1.GateFailed))
	m.gateResults(after, later)
	m.gateResults(later, later) // a status write that added no result
	if got := testutil.ToFloat64(m.gateRuns.WithLabelValues("ml", "fraud", "EachStep", "HTTP", "Passed")); got != 1 {
		t.Errorf("Passed runs = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.gateRuns.WithLabelValues("ml", "fraud", "EachStep", "HTTP", "Failed")); got != 1 {
		t.Errorf("Failed runs = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.gateTime); n != 1 {
		t.Errorf("%d duration series, want 1", n)
	}
	m.forget("ml", "fraud")
	if n := testutil.CollectAndCount(m.gateRuns); n != 0 {
		t.Errorf("%d gate run series left after forget", n)
	}
}
