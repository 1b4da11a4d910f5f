package rollout

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func withShadow(percent int32, d time.Duration) func(*v1alpha1.ModelRollout) {
	return func(r *v1alpha1.ModelRollout) {
		r.Spec.Strategy.Canary.Shadow = &v1alpha1.ShadowStage{Percent: percent, MinDuration: metav1.Duration{Duration: d}}
	}
}

// candidateWeights are the candidate's weights in every history entry.
func (s *sim) candidateWeights(subset string) []int32 {
	var out []int32
	for _, h := range s.r.Status.History {
		for _, w := range h.Weights {
			if w.Subset == subset {
				out = append(out, w.Weight)
			}
		}
	}
	return out
}

// Given a shadow stage of 2 minutes, the mirror is wanted from the start
// with the candidate at weight 0; a passing round before the minimum does
// not end it; after it, the stage passes, the mirror goes and the first
// step's weights are written in the same reconcile.
func TestShadowPassesThenFirstStep(t *testing.T) {
	s := newSim(t, withMetrics, withShadow(50, 2*time.Minute))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	m := MirrorWanted(&s.r.Status)
	if m == nil || m.Subset != "v2" || m.Percent != 50 {
		t.Fatalf("mirror wanted %+v, want v2 at 50%%", m)
	}
	s.clk.Step(time.Minute)
	s.reconcile(pass())
	if s.r.Status.Shadow == nil {
		t.Fatal("the shadow stage ended before its minimum duration")
	}
	s.clk.Step(90 * time.Second)
	s.reconcile(pass())
	if s.r.Status.Shadow != nil || MirrorWanted(&s.r.Status) != nil {
		t.Fatalf("shadow %+v after it passed, want none", s.r.Status.Shadow)
	}
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	if got := s.historyTypes(); !slices.Equal(got, []string{HistoryStarted, HistoryShadowPassed}) {
		t.Fatalf("history %v", got)
	}
	s.wantEvent(ReasonShadowPassed)
	if s.r.Status.StepStartedAt == nil || !s.r.Status.StepStartedAt.Time.Equal(s.clk.Now()) {
		t.Fatal("the first step's clock did not start when its weights were written")
	}
}

// A candidate that fails in shadow is rolled back with no user ever served
// by it: no history entry gives it weight, and the reason says so.
func TestShadowFailureRollsBackWithNoUserServed(t *testing.T) {
	s := newSim(t, withMetrics, withShadow(100, time.Minute))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(30 * time.Second)
	s.reconcile(fail())
	s.clk.Step(30 * time.Second)
	s.reconcile(fail())
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if MirrorWanted(&s.r.Status) != nil || s.r.Status.Shadow != nil {
		t.Fatal("the mirror is still wanted after the rollback")
	}
	last := s.r.Status.History[len(s.r.Status.History)-1]
	if !strings.Contains(last.Reason, "in shadow, no user was served by v2") {
		t.Fatalf("rollback reason %q", last.Reason)
	}
	if w := s.candidateWeights("v2"); slices.Max(w) != 0 {
		t.Fatalf("v2 had weights %v in history, want 0 throughout", w)
	}
}

// The mirror is first written when the candidate has its Ready pods; until
// then the stage waits and says why.
func TestShadowWaitsForPods(t *testing.T) {
	s := newSim(t, withShadow(100, time.Minute), func(r *v1alpha1.ModelRollout) { r.Spec.Strategy.Canary.MinStepDuration.Duration = time.Hour })
	s.ready["v2"] = 0
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	if MirrorWanted(&s.r.Status) != nil {
		t.Fatal("mirror wanted to a candidate without Ready pods")
	}
	s.wantWaiting(t, "shadow waits: subset v2 has 0 Ready pod(s)")
	s.ready["v2"] = 1
	s.reconcile(nil)
	if MirrorWanted(&s.r.Status) == nil {
		t.Fatal("no mirror once the candidate is Ready")
	}
	if s.last.RequeueAfter != time.Minute {
		t.Fatalf("requeue after %s, want the shadow's minimum (1m), not the steps' rule", s.last.RequeueAfter)
	}
	// Without metrics the stage ends on time.
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
}

// A configuration problem in shadow (a user's mirror on the route, say)
// fails the rollout and keeps the stage: once fixed, the rollout is back in
// shadow, never past it with users on the candidate.
func TestShadowSurvivesAProblem(t *testing.T) {
	s := newSim(t, withMetrics, withShadow(100, time.Minute))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	d := Decide(s.r, Observed{Now: s.clk.Now(), Problem: "route \"predict\" already mirrors requests elsewhere"})
	s.r.Status = d.Status
	s.wantPhase(v1alpha1.PhaseFailed)
	if s.r.Status.Shadow == nil {
		t.Fatal("the shadow stage was dropped when the rollout failed")
	}
	s.clk.Step(2 * time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if MirrorWanted(&s.r.Status) == nil {
		t.Fatal("back from Failed, the mirror is not wanted: the shadow stage was skipped")
	}
}
