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
