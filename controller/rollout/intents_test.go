package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// Tests of the manual intents: split, pause/resume, promote and roll back now,
// a new candidate mid-rollout.

func TestManualSplitPinsWeights(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.intent("s1", v1alpha1.IntentSplit, v1alpha1.SubsetWeight{Subset: "v1", Weight: 70}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 30})
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseManualSplit)
	s.wantWeights(map[string]int32{"v1": 70, "v2": 30})
	s.clk.Step(time.Hour)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 70, "v2": 30})
	s.steady()
	if s.r.Status.ObservedIntent != "s1" {
		t.Fatalf("observedIntent %q", s.r.Status.ObservedIntent)
	}
	s.intent("r1", v1alpha1.IntentResume)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
}

func TestSplitToUnknownSubsetIsIgnored(t *testing.T) {
	s := newSim(t)
	s.intent("s1", v1alpha1.IntentSplit, v1alpha1.SubsetWeight{Subset: "v1", Weight: 70}, v1alpha1.SubsetWeight{Subset: "v9", Weight: 30})
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseStable)
	if e := s.wantEvent(ReasonIntentIgnored); !strings.Contains(e.Message, "v9") {
		t.Fatalf("event %+v", e)
	}
	if s.r.Status.ObservedIntent != "s1" {
		t.Fatal("ignored intent not marked observed")
	}
}

func TestSplitWaitsForReadyPods(t *testing.T) {
	s := newSim(t)
	s.ready["v3"] = 0
	s.intent("s1", v1alpha1.IntentSplit, v1alpha1.SubsetWeight{Subset: "v1", Weight: 50}, v1alpha1.SubsetWeight{Subset: "v3", Weight: 50})
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100})
	if s.r.Status.ObservedIntent != "" || !strings.Contains(s.r.Status.Message, "Split by alice waits") {
		t.Fatalf("observed %q message %q", s.r.Status.ObservedIntent, s.r.Status.Message)
	}
	s.ready["v3"] = 1
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseManualSplit)
	s.wantWeights(map[string]int32{"v1": 50, "v3": 50})
}

func TestPauseResumeAndIntentOnce(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.intent("p1", v1alpha1.IntentPause)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePaused)
	n := len(s.r.Status.History)
	s.clk.Step(time.Hour)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePaused)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 5})
	if len(s.r.Status.History) != n {
		t.Fatal("the same intent was applied twice")
	}
	s.intent("r1", v1alpha1.IntentResume)
	s.reconcile(nil)
	// Paused longer than minStepDuration: the step's clock kept running.
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	if got := strings.Join(s.historyTypes(), ","); got != "Started,Paused,Resumed,StepAdvanced" {
		t.Fatalf("history %s", got)
	}
	h := s.r.Status.History[1]
	if h.Actor != "alice" || h.Reason != "because" || h.IntentID != "p1" || h.From != v1alpha1.PhaseProgressing || h.To != v1alpha1.PhasePaused {
		t.Fatalf("pause history %+v", h)
	}
	s.intent("p2", v1alpha1.IntentResume)
	s.reconcile(nil)
	if e := s.wantEvent(ReasonIntentIgnored); !strings.Contains(e.Message, "it is Progressing") {
		t.Fatalf("event %+v", e)
	}
}

func TestPromoteNowAndRollbackNow(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.intent("pr", v1alpha1.IntentPromote)
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	if !d.Promote || s.r.Spec.Stable != "v2" {
		t.Fatalf("promote now: decision %v stable %s", d.Promote, s.r.Spec.Stable)
	}
	s.wantWeights(map[string]int32{"v2": 100, "v1": 0})

	s = newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.intent("rb", v1alpha1.IntentRollback)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if e := s.wantEvent(ReasonRolledBack); e.Type != EventTypeNormal || !strings.Contains(e.Message, "alice") {
		t.Fatalf("event %+v", e)
	}
}

func TestNewCandidateMidRollout(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	s.r.Spec.Candidate = "v3"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 0, "v3": 5})
	if *s.r.Status.Step != 0 || s.r.Status.Candidate != "v3" {
		t.Fatalf("step %d candidate %s", *s.r.Status.Step, s.r.Status.Candidate)
	}
	if e := s.wantEvent(ReasonStarted); e.Message == "" {
		t.Fatal("no start event")
	}
	last := s.events[len(s.events)-1]
	if !strings.Contains(last.Message, "v2 drops from 25% to 0") {
		t.Fatalf("start event %q", last.Message)
	}
	// New candidate not Ready yet: the old one still drops to 0 at once.
	s.ready["v1"] = 5
	s.ready["v4"] = 0
	s.r.Spec.Candidate = "v4"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v3": 0, "v2": 0})
}
