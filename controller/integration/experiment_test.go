package integration

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/analysis/experiment"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller"
)

// scriptedRewards answers every look with more trials at fixed rates per
// arm, as a model's feedback counters would grow.
type scriptedRewards struct {
	mu    sync.Mutex
	looks int
	rates map[string]float64
	step  float64
	since []time.Time
}

func (s *scriptedRewards) Rewards(_ context.Context, _, _, _ string, arms []string, since, _ time.Time) ([]experiment.ArmData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.looks++
	s.since = append(s.since, since)
	out := make([]experiment.ArmData, len(arms))
	for i, a := range arms {
		n := s.step * float64(s.looks)
		out[i] = experiment.ArmData{Name: a, Successes: s.rates[a] * n, Trials: n}
	}
	return out, nil
}

func experimentRollout(mr *v1alpha1.ModelRollout) {
	mr.Spec.Strategy = v1alpha1.Strategy{Experiment: &v1alpha1.ExperimentStrategy{
		Arms:        []v1alpha1.ExperimentArm{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}},
		Reward:      v1alpha1.Reward{Template: "model-feedback", MinEffect: 0.02},
		MinDuration: metav1.Duration{Duration: 2 * time.Second}, MaxDuration: metav1.Duration{Duration: time.Hour},
	}}
	mr.Spec.Analysis = &v1alpha1.Analysis{Interval: metav1.Duration{Duration: time.Second}}
}

// On a real API server: an experiment writes its arms' weights and the
// cookie stickiness into the VirtualService, reads the reward once a
// second from its start, names v2 the winner after minDuration and keeps
// the split with its stickiness; a person's rollback then puts v1 back at
// 100% and removes every trace of the experiment from the routes.
func TestExperimentOnTheAPIServer(t *testing.T) {
	f := newFixture(t)
	rewards := &scriptedRewards{rates: map[string]float64{"v1": 0.10, "v2": 0.14}, step: 20000}
	startControllerConfig(f, controller.Config{Rewards: rewards})
	f.rollout("fraud", experimentRollout)
	f.waitWeights("fraud", map[string]int32{"v1": 50, "v2": 50})
	f.eventually("the sticky routes and cookies", func() bool {
		http := f.vs("fraud").Object["spec"].(map[string]any)["http"].([]any)
		return len(http) == 3 && routeName(http[0]) == "fulcrum-exp-fraud-v1" && routeName(http[1]) == "fulcrum-exp-fraud-v2" &&
			strings.Contains(mustJSONString(t, http[2]), "fulcrum-exp-fraud=v2; Path=/; Max-Age=604800")
	})
	mr := f.waitPhase("fraud", v1alpha1.PhaseManualSplit)
	es := mr.Status.Experiment
	if es == nil || es.Outcome != v1alpha1.ExperimentWinner || es.Winner != "v2" || es.StartedAt == nil || es.DecidedAt == nil {
		t.Fatalf("status.experiment %+v, want v2 the winner", es)
	}
	if age := es.DecidedAt.Sub(es.StartedAt.Time); age < 2*time.Second {
		t.Fatalf("decided %s after the start, before minDuration", age)
	}
	rewards.mu.Lock()
	for _, s := range rewards.since {
		if !s.Equal(es.StartedAt.Time) {
			t.Errorf("reward read since %s, want the start %s", s, es.StartedAt.Time)
		}
	}
	rewards.mu.Unlock()
	if w := f.weights("fraud"); w["v1"] != 50 || w["v2"] != 50 {
		t.Fatalf("weights after the decision %v, want the split kept", w)
	}
	if n := len(f.vs("fraud").Object["spec"].(map[string]any)["http"].([]any)); n != 3 {
		t.Fatalf("%d routes after the decision, want the sticky routes kept", n)
	}
	t.Logf("outcome: %s", es.Reason)

	f.intent("fraud", "rb", v1alpha1.IntentRollback)
	f.waitWeights("fraud", map[string]int32{"v1": 100, "v2": 0})
	f.eventually("the experiment gone from the routes", func() bool {
		vs := f.vs("fraud")
		http := vs.Object["spec"].(map[string]any)["http"].([]any)
		return len(http) == 1 && !strings.Contains(mustJSONString(t, vs.Object), "fulcrum-exp")
	})
}

func routeName(r any) string {
	n, _ := r.(map[string]any)["name"].(string)
	return n
}

func mustJSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := (&unstructured.Unstructured{Object: map[string]any{"v": v}}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With three arms, every arm other than the control is judged by the
// guardrails, each against the control, and a failing arm that is not
// spec.candidate ends the experiment, its messages naming it.
func TestExperimentGuardsEveryArm(t *testing.T) {
	f := newFixture(t)
	f.pod("fraud-v3", "v3")
	judged := map[string]bool{}
	var mu sync.Mutex
	a := &armAnalyzer{judge: func(req analysis.Request) v1alpha1.Verdict {
		mu.Lock()
		judged[req.Candidate] = true
		mu.Unlock()
		if _, ok := req.Weights["v3"]; ok && req.Candidate != "v3" {
			t.Errorf("round for %s weighs v3 too: %v", req.Candidate, req.Weights)
		}
		if req.Candidate == "v3" {
			return v1alpha1.VerdictFail
		}
		return v1alpha1.VerdictPass
	}}
	rewards := &scriptedRewards{rates: map[string]float64{"v1": 0.10, "v2": 0.10, "v3": 0.10}, step: 100}
	startControllerConfig(f, controller.Config{Rewards: rewards, Analyzer: a})
	f.rollout("fraud", experimentRollout, func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Experiment.Arms = []v1alpha1.ExperimentArm{{Subset: "v1", Weight: 34}, {Subset: "v2", Weight: 33}, {Subset: "v3", Weight: 33}}
		mr.Spec.Strategy.Experiment.MinDuration = metav1.Duration{Duration: time.Hour}
		mr.Spec.Analysis.Metrics = []v1alpha1.Metric{{Name: "error-rate", Template: "istio-error-rate", Threshold: &v1alpha1.ThresholdJudge{Max: ptrTo(0.01)}}}
		mr.Spec.Analysis.FailureLimit = 1
	})
	mr := f.waitPhase("fraud", v1alpha1.PhaseRolledBack)
	if es := mr.Status.Experiment; es == nil || es.Outcome != v1alpha1.ExperimentStopped || !strings.Contains(es.Reason, "arm v3") {
		t.Fatalf("status.experiment %+v, want Stopped naming arm v3", es)
	}
	mu.Lock()
	defer mu.Unlock()
	if !judged["v2"] || !judged["v3"] {
		t.Fatalf("arms judged %v, want v2 and v3", judged)
	}
	f.waitWeights("fraud", map[string]int32{"v1": 100, "v2": 0, "v3": 0})
}

// armAnalyzer answers each round with the verdict judge gives its request.
type armAnalyzer struct {
	judge func(analysis.Request) v1alpha1.Verdict
}

func (a *armAnalyzer) Analyze(_ context.Context, req analysis.Request) (v1alpha1.AnalysisRound, error) {
	v := a.judge(req)
	return v1alpha1.AnalysisRound{Verdict: v, Metrics: []v1alpha1.MetricResult{{Name: "error-rate", Verdict: v, Message: "scripted"}}}, nil
}

func ptrTo[T any](v T) *T { return &v }
