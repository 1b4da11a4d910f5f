package rollout

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// withSequential gives the rollout an error-rate metric judged by the
// sequential test, and leaves minStepDuration unset: its steps follow the
// evidence.
func withSequential(r *v1alpha1.ModelRollout) {
	r.Spec.Strategy.Canary.MinStepDuration = metav1.Duration{}
	r.Spec.Analysis = &v1alpha1.Analysis{
		Interval: metav1.Duration{Duration: 30 * time.Second}, FailureLimit: 2, InconclusiveLimit: 3, MinSamples: 100,
		Metrics: []v1alpha1.Metric{{Name: "error-rate", Template: "istio-error-rate",
			Sequential: &v1alpha1.SequentialJudge{MaxIncrease: 0.005, Confidence: 0.99}}},
	}
}

// seqRound is a round of the error-rate metric whose step saw cand
// candidate and 9×cand stable requests (1% and 0.5% bad) over window, with
// the increase at most upper.
func seqRound(v v1alpha1.Verdict, cand int64, window time.Duration, upper float64) *v1alpha1.AnalysisRound {
	m := v1alpha1.MetricResult{Name: "error-rate", Verdict: v, Upper: &upper, CandidateSamples: cand,
		Evidence: &v1alpha1.StepEvidence{
			Candidate: v1alpha1.EventCounts{Bad: cand / 100, Total: cand},
			Stable:    v1alpha1.EventCounts{Bad: 9 * cand / 200, Total: 9 * cand},
			Window:    metav1.Duration{Duration: window},
		}}
	return &v1alpha1.AnalysisRound{Verdict: v, Metrics: []v1alpha1.MetricResult{m}}
}

func (s *sim) wantEvidence(steps ...int64) {
	s.t.Helper()
	a := s.r.Status.Analysis
	var got []int64
	if a != nil && len(a.Evidence) == 1 {
		for _, st := range a.Evidence[0].Steps {
			got = append(got, st.Candidate.Total)
		}
	}
	if len(got) != len(steps) {
		s.t.Fatalf("evidence of completed steps: %v candidate requests, want %v (%+v)", got, steps, a)
	}
	for i := range got {
		if got[i] != steps[i] {
			s.t.Fatalf("evidence of completed steps: %v candidate requests, want %v", got, steps)
		}
	}
}

// A Pass ends a step after the minimum dwell (minStepDuration unset);
// rounds come every look period (5s) on the clock's boundaries; each
// completed step's counts stay in status for the steps after it.
func TestEvidenceDrivenStepsAdvanceOnPassAfterTheDwell(t *testing.T) {
	s := newSim(t, withSequential) // steps 5, 25, 50, 100; minStepDuration unset
	s.r.Spec.Candidate = "v2"
	d := s.reconcile(nil)
	if d.RequeueAfter != 5*time.Second {
		t.Fatalf("first look in %v, want 5s", d.RequeueAfter)
	}
	if AnalysisDue(s.r, s.clk.Now().Add(4*time.Second)) || !AnalysisDue(s.r, s.clk.Now().Add(5*time.Second)) {
		t.Fatal("first look not due exactly one look period after the step's start")
	}
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictPass, 500, 5*time.Second, 0.001))
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	if h := s.r.Status.History[len(s.r.Status.History)-1]; h.Reason != "step 1 passed analysis" {
		t.Fatalf("history reason %q", h.Reason)
	}
	s.wantEvidence(500)
	// A step advanced by a look 300ms after a boundary: its next look is at
	// the next boundary, a whole look period of evidence later.
	s.clk.Step(300 * time.Millisecond)
	s.reconcile(nil)
	if next, _ := nextRoundAt(s.r); !next.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("next look at %v, want the boundary t0+10s", next.Sub(t0))
	}
	s.clk.Step(4700 * time.Millisecond)
	s.reconcile(seqRound(v1alpha1.VerdictPass, 2500, 5*time.Second, 0.001))
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	s.wantEvidence(500, 2500)
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictPass, 5000, 5*time.Second, 0.001))
	s.wantPhase(v1alpha1.PhasePromoted)
	if got := s.last.Duration; got != 15*time.Second {
		t.Fatalf("promoted after %v, want 15s", got)
	}
}

// A round from an earlier reconcile does not end a step that follows the
// evidence: the step's counts must reach to its end.
func TestEvidenceDrivenStepEndsOnlyWithAFreshRound(t *testing.T) {
	s := newSim(t, withSequential)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(3 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictPass, 300, 3*time.Second, 0.001)) // before the dwell
	s.clk.Step(10 * time.Second)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
}

// One always-valid Fail rolls back at once, whatever failureLimit says.
func TestSequentialFailRollsBackAtOnce(t *testing.T) {
	s := newSim(t, withSequential) // failureLimit 2
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictFail, 600, 5*time.Second, 0.03))
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if h := s.r.Status.History[len(s.r.Status.History)-1]; !strings.Contains(h.Reason, "always-valid") {
		t.Fatalf("rollback reason %q", h.Reason)
	}
}

// Looks every 5s count toward the limits once per interval (30s): three
// inconclusive intervals pause the rollout, not three looks.
func TestLimitsCountOncePerInterval(t *testing.T) {
	s := newSim(t, withSequential, func(r *v1alpha1.ModelRollout) {
		zero := 0.0
		r.Spec.Analysis.Metrics[0].Sequential.ExposureBudget = &zero // no budget steps
	})
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	looks := 0
	for s.r.Status.Phase == v1alpha1.PhaseProgressing && looks < 100 {
		s.clk.Step(5 * time.Second)
		s.reconcile(seqRound(v1alpha1.VerdictInconclusive, 5000, 5*time.Second, 0.02))
		looks++
	}
	s.wantPhase(v1alpha1.PhasePaused)
	// Counted: the first look (5s), then the first in each new interval
	// (30s, 60s): paused at 60s, the 12th look.
	if looks != 12 {
		t.Fatalf("paused after %d looks, want 12 (three intervals)", looks)
	}
}

// Before its evidence is in, a step advances within the exposure budget;
// never onto the last step (promotion needs a Pass).
func TestExposureBudgetAdvancesBeforeTheEvidence(t *testing.T) {
	s := newSim(t, withSequential)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	// 1,000 requests/s in the step (5,000 in 5s): at 25%, one look serves
	// 1,250 candidate requests; with the increase at most 1%, 12.5 extra
	// bad events, within the default budget of 25.
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictInconclusive, 500, 5*time.Second, 0.01))
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	if h := s.r.Status.History[len(s.r.Status.History)-1]; !strings.Contains(h.Reason, "exposure budget") {
		t.Fatalf("history reason %q should name the exposure budget", h.Reason)
	}
	// At 25% with the increase at most 1.2%, 50% would serve 30 extra:
	// held.
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictInconclusive, 500, 5*time.Second, 0.012))
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictInconclusive, 500, 5*time.Second, 0.004))
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	// Next is 100%: however small the exposure, only a Pass promotes.
	for range 3 {
		s.clk.Step(5 * time.Second)
		s.reconcile(seqRound(v1alpha1.VerdictInconclusive, 5, 5*time.Second, 0))
	}
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	s.wantEvidence(500, 500)
}

// The evidence lives in status: a controller restarted between two steps
// (a fresh decider from the stored object) continues the same test, and a
// new rollout starts with none.
func TestEvidenceSurvivesARestartAndResetsWithANewRollout(t *testing.T) {
	s := newSim(t, withSequential)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictPass, 500, 5*time.Second, 0.001))
	raw, err := json.Marshal(s.r)
	if err != nil {
		t.Fatal(err)
	}
	restarted := &v1alpha1.ModelRollout{}
	if err := json.Unmarshal(raw, restarted); err != nil {
		t.Fatal(err)
	}
	ev := CompletedEvidence(restarted)
	if len(ev) != 1 || ev[0].Metric != "error-rate" || len(ev[0].Steps) != 1 || ev[0].Steps[0].Candidate.Total != 500 || ev[0].Steps[0].Step != 0 {
		t.Fatalf("evidence after a restart: %+v", ev)
	}
	s.intent("abort", v1alpha1.IntentRollback)
	s.reconcile(nil)
	s.intent("again", v1alpha1.IntentStart)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantEvidence()
}

// A step interrupted by a manual split keeps what its last round counted;
// a round whose metric could not be read leaves the round before it to
// count.
func TestInterruptedStepKeepsItsLastCounts(t *testing.T) {
	s := newSim(t, withSequential, func(r *v1alpha1.ModelRollout) {
		zero := 0.0
		r.Spec.Analysis.Metrics[0].Sequential.ExposureBudget = &zero
	})
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictInconclusive, 700, 5*time.Second, 0.02))
	s.clk.Step(5 * time.Second)
	s.reconcile(&v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictError, Metrics: []v1alpha1.MetricResult{{Name: "error-rate", Verdict: v1alpha1.VerdictError}}})
	s.intent("pin", v1alpha1.IntentSplit, v1alpha1.SubsetWeight{Subset: "v1", Weight: 70}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 30})
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseManualSplit)
	s.intent("go-on", v1alpha1.IntentResume)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantEvidence(700)
}

func TestAddStepEvidenceIsBounded(t *testing.T) {
	var ev []v1alpha1.MetricEvidence
	for i := range v1alpha1.MaxEvidenceSteps + 5 {
		ev = addStepEvidence(ev, "error-rate", v1alpha1.StepEvidence{Step: int32(i % 2), Candidate: v1alpha1.EventCounts{Total: 1}})
	}
	steps := ev[0].Steps
	var total int64
	for _, st := range steps {
		total += st.Candidate.Total
	}
	if len(steps) != v1alpha1.MaxEvidenceSteps || total != v1alpha1.MaxEvidenceSteps+5 {
		t.Fatalf("%d steps holding %d requests; want %d steps holding all %d", len(steps), total, v1alpha1.MaxEvidenceSteps, v1alpha1.MaxEvidenceSteps+5)
	}
}

// A minStepDuration that the spec sets holds an evidence-driven step whose
// evidence is in, until it has lasted that long.
func TestSetMinStepDurationHoldsAPassedStep(t *testing.T) {
	s := newSim(t, withSequential, func(r *v1alpha1.ModelRollout) {
		r.Spec.Strategy.Canary.MinStepDuration = metav1.Duration{Duration: 20 * time.Second}
	})
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	for range 3 {
		s.clk.Step(5 * time.Second)
		s.reconcile(seqRound(v1alpha1.VerdictPass, 500, 5*time.Second, 0.001))
		s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	}
	s.clk.Step(5 * time.Second)
	s.reconcile(seqRound(v1alpha1.VerdictPass, 500, 5*time.Second, 0.001))
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
}
