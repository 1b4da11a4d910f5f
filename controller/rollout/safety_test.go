package rollout

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// atStep2 is a sim whose candidate v2 serves 25% (step 2 of [5 25 50 100]).
func atStep2(t *testing.T) *sim {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	return s
}

func lastHistory(s *sim) v1alpha1.HistoryEntry { return s.r.Status.History[len(s.r.Status.History)-1] }

func TestCandidateLosingPodsIsRolledBackAtOnce(t *testing.T) {
	s := atStep2(t)
	s.ready["v2"] = 0
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.wantPhase(v1alpha1.PhaseRolledBack)
	h := lastHistory(s)
	if h.Type != HistoryRolledBack || h.Actor != ActorController || !strings.Contains(h.Reason, "subset v2 has 0 Ready pod(s)") || !strings.Contains(h.Reason, "its 25% went back to v1") {
		t.Fatalf("history %+v", h)
	}
	s.wantEvent(ReasonRolledBack)
	if c := meta.FindStatusCondition(s.r.Status.Conditions, v1alpha1.ConditionSubsetsReady); c == nil || c.Reason != CondReasonSubsetGone {
		t.Fatalf("SubsetsReady %+v", c)
	}
}

func TestCandidateRemovedFromDestinationRuleIsRolledBack(t *testing.T) {
	s := atStep2(t)
	delete(s.subsets, "v2")
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.wantPhase(v1alpha1.PhaseRolledBack)
	if h := lastHistory(s); !strings.Contains(h.Reason, "subset v2 is no longer in DestinationRule fraud") {
		t.Fatalf("history %+v", h)
	}
	// Nothing more happens on later looks.
	n := len(s.r.Status.History)
	s.reconcile(nil)
	if len(s.r.Status.History) != n {
		t.Fatalf("history grew: %v", s.historyTypes())
	}
}

func TestStableWithoutPodsHoldsEverything(t *testing.T) {
	s := atStep2(t)
	s.ready["v1"] = 0
	s.clk.Step(10 * time.Minute)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	s.wantPhase(v1alpha1.PhaseProgressing)
	c := meta.FindStatusCondition(s.r.Status.Conditions, v1alpha1.ConditionSubsetsReady)
	if c == nil || c.Reason != CondReasonStableNotReady || !strings.Contains(c.Message, "stable subset v1 has no Ready pods") {
		t.Fatalf("SubsetsReady %+v", c)
	}
	// The candidate loses its pods too: weight is not poured onto a stable
	// that has none either.
	s.ready["v2"] = 0
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
	// A subset missing from the DestinationRule is drained whatever stable's
	// state: Istio cannot route to it at all.
	delete(s.subsets, "v2")
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	s.wantPhase(v1alpha1.PhaseRolledBack)
}

func TestPinnedThirdSubsetLosingPodsGivesWeightToStable(t *testing.T) {
	s := newSim(t)
	s.reconcile(nil)
	s.intent("s1", v1alpha1.IntentSplit, sw("v1", 60), sw("v2", 20), sw("v3", 20))
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 60, "v2": 20, "v3": 20})
	s.ready["v3"] = 0
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20, "v3": 0})
	s.wantPhase(v1alpha1.PhaseManualSplit)
	h := lastHistory(s)
	if h.Type != HistoryTrafficRestored || !strings.Contains(h.Reason, "subset v3 has 0 Ready pod(s)") {
		t.Fatalf("history %+v", h)
	}
	s.wantEvent(ReasonSubsetUnavailable)
	// Pods coming back do not move traffic by themselves.
	s.ready["v3"] = 2
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 80, "v2": 20, "v3": 0})
}

func TestRollbackSupersedesPendingPromote(t *testing.T) {
	s := atStep2(t)
	// The promote waits for pods (v2 has none), and in the same look the
	// candidate is found without pods while it carries 25%.
	s.intent("pr", v1alpha1.IntentPromote)
	s.ready["v2"] = 0
	s.reconcile(nil)
	// The candidate lost its pods with a promote pending: rolled back, and
	// the promote is recorded as superseded, not left to apply later.
	s.wantPhase(v1alpha1.PhaseRolledBack)
	types := strings.Join(s.historyTypes(), ",")
	if !strings.HasSuffix(types, "IntentSuperseded,RolledBack") {
		t.Fatalf("history %s", types)
	}
	if s.r.Status.ObservedIntent != "pr" {
		t.Fatalf("observed %q", s.r.Status.ObservedIntent)
	}
}

func TestRollbackIntentRecordsWhatItSuperseded(t *testing.T) {
	s := atStep2(t)
	s.intent("rb", v1alpha1.IntentRollback)
	s.r.Spec.Intent.Supersedes = &v1alpha1.SupersededIntent{ID: "pr", Action: v1alpha1.IntentPromote, Actor: "bob"}
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	n := len(s.r.Status.History)
	sup, rb := s.r.Status.History[n-2], s.r.Status.History[n-1]
	if sup.Type != HistoryIntentSuperseded || sup.IntentID != "pr" || sup.Actor != "bob" || !strings.Contains(sup.Reason, "promote requested by bob was superseded by rollback from alice") {
		t.Fatalf("superseded entry %+v", sup)
	}
	if rb.Type != HistoryRolledBack || rb.IntentID != "rb" || rb.Actor != "alice" {
		t.Fatalf("rollback entry %+v", rb)
	}
	s.reconcile(nil)
	if len(s.r.Status.History) != n {
		t.Fatal("superseded entry recorded twice")
	}
}

func TestRollbackCancellingPendingStartRecordsOnlyTheStart(t *testing.T) {
	s := newSim(t)
	s.reconcile(nil)
	s.intent("rb", v1alpha1.IntentRollback)
	s.r.Spec.Intent.Supersedes = &v1alpha1.SupersededIntent{ID: "st", Action: v1alpha1.IntentStart, Actor: "bob"}
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseStable)
	if got := strings.Join(s.historyTypes(), ","); got != "IntentSuperseded" {
		t.Fatalf("history %s", got)
	}
	if s.r.Status.ObservedIntent != "rb" {
		t.Fatalf("observed %q", s.r.Status.ObservedIntent)
	}
}

func TestNewRolloutAdoptsExistingSplit(t *testing.T) {
	s := newSim(t)
	s.routes = map[string]map[string]int32{"predict": {"v1": 70, "v2": 30}}
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseManualSplit)
	s.wantWeights(map[string]int32{"v1": 70, "v2": 30})
	h := lastHistory(s)
	if h.Type != HistoryAdopted || h.Actor != ActorController || !strings.Contains(h.Reason, "v1=70 v2=30") {
		t.Fatalf("history %+v", h)
	}
	s.wantEvent(ReasonAdopted)
	for i := 0; i < 3; i++ {
		s.clk.Step(time.Hour)
		s.reconcile(nil)
	}
	s.wantWeights(map[string]int32{"v1": 70, "v2": 30})
	if len(s.r.Status.History) != 1 {
		t.Fatalf("history %v", s.historyTypes())
	}
}

func TestNewRolloutWithCandidateAdoptsAndResumesFromTheAdoptedStep(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.routes = map[string]map[string]int32{"predict": {"v1": 70, "v2": 30}}
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseManualSplit)
	s.wantWeights(map[string]int32{"v1": 70, "v2": 30})
	s.intent("r", v1alpha1.IntentResume)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 75, "v2": 25})
}

func TestNewRolloutAtStableMovesNothingAndRecordsNothing(t *testing.T) {
	s := newSim(t)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseStable)
	if len(s.r.Status.History) != 0 {
		t.Fatalf("history %v", s.historyTypes())
	}
}

func TestNewRolloutOnDisagreeingRoutesWritesNothing(t *testing.T) {
	s := newSim(t)
	s.routes = map[string]map[string]int32{"predict": {"v1": 70, "v2": 30}, "batch": {"v1": 100}}
	d := s.reconcile(nil)
	if d.Weights != nil {
		t.Fatalf("weights written: %v", d.Weights)
	}
	s.wantPhase(v1alpha1.PhaseFailed)
	if !strings.Contains(s.r.Status.Message, "the managed routes carry different weights") {
		t.Fatalf("message %q", s.r.Status.Message)
	}
}

func TestSplitAfterPromotionSticks(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.intent("pr", v1alpha1.IntentPromote)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	if s.r.Spec.Stable != "v2" {
		t.Fatalf("stable %s", s.r.Spec.Stable)
	}
	s.intent("sp", v1alpha1.IntentSplit, sw("v1", 70), sw("v2", 30))
	for i := 0; i < 3; i++ {
		s.reconcile(nil)
		s.clk.Step(time.Minute)
	}
	s.wantPhase(v1alpha1.PhaseManualSplit)
	s.wantWeights(map[string]int32{"v1": 70, "v2": 30})
	if got := strings.Join(s.historyTypes(), ","); got != "Started,Promoted,ManualSplit" {
		t.Fatalf("history %s", got)
	}
}

func TestConflictWritesNothing(t *testing.T) {
	s := newSim(t)
	s.r.Spec.Candidate = "v2"
	s.conflict = "route predict of VirtualService ml/fraud is already managed by ModelRollout ml/other"
	d := s.reconcile(nil)
	if d.Weights != nil {
		t.Fatalf("weights written: %v", d.Weights)
	}
	c := meta.FindStatusCondition(s.r.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != CondReasonRouteConflict {
		t.Fatalf("Ready %+v", c)
	}
}

func TestPauseWhilePausedIsIgnoredWithTheTablesReason(t *testing.T) {
	s := atStep2(t)
	s.intent("p1", v1alpha1.IntentPause)
	s.reconcile(nil)
	s.intent("p2", v1alpha1.IntentPause)
	s.reconcile(nil)
	want := v1alpha1.ActionAllowed(v1alpha1.IntentPause, v1alpha1.ActionState{Phase: v1alpha1.PhasePaused, Candidate: "v2"})
	if h := lastHistory(s); h.Type != HistoryIntentIgnored || !strings.Contains(h.Reason, want) {
		t.Fatalf("history %+v, want reason %q", h, want)
	}
}

func TestLongTextIsCutOnRuneBoundaries(t *testing.T) {
	s := atStep2(t)
	s.intent("rb", v1alpha1.IntentRollback)
	s.r.Spec.Intent.Reason = strings.Repeat("é", 2000)
	s.reconcile(nil)
	h := lastHistory(s)
	if len(h.Reason) > v1alpha1.MaxHistoryReason || !utf8.ValidString(h.Reason) {
		t.Fatalf("reason %d bytes, valid %v", len(h.Reason), utf8.ValidString(h.Reason))
	}
	for _, e := range s.last.Events {
		if len(e.Message) > maxEventNote || !utf8.ValidString(e.Message) {
			t.Fatalf("event %d bytes", len(e.Message))
		}
	}
	if len(s.r.Status.Message) > v1alpha1.MaxStatusMessage {
		t.Fatalf("message %d bytes", len(s.r.Status.Message))
	}
}

func TestRoundTextIsBounded(t *testing.T) {
	s := newSim(t, withMetrics)
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.clk.Step(31 * time.Second)
	var ms []v1alpha1.MetricResult
	for i := 0; i < 60; i++ {
		ms = append(ms, v1alpha1.MetricResult{Name: "m", Verdict: v1alpha1.VerdictError, Message: strings.Repeat("ü", 5000)})
	}
	s.reconcile(&v1alpha1.AnalysisRound{Verdict: v1alpha1.VerdictError, Metrics: ms})
	rd := s.r.Status.Analysis.RecentRounds[0]
	if len(rd.Metrics) > maxRoundMetrics {
		t.Fatalf("%d metrics kept", len(rd.Metrics))
	}
	for _, m := range rd.Metrics {
		if len(m.Message) > v1alpha1.MaxMetricMessage || !utf8.ValidString(m.Message) {
			t.Fatalf("metric message %d bytes", len(m.Message))
		}
	}
}

func sw(subset string, w int32) v1alpha1.SubsetWeight {
	return v1alpha1.SubsetWeight{Subset: subset, Weight: w}
}

func TestRollbackOfAPodlessCandidateRecordsTheMoveOnce(t *testing.T) {
	s := atStep2(t)
	s.intent("rb", v1alpha1.IntentRollback)
	s.r.Spec.Intent.Supersedes = &v1alpha1.SupersededIntent{ID: "pr", Action: v1alpha1.IntentPromote, Actor: "bob"}
	s.ready["v2"] = 0
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if got := strings.Join(s.historyTypes(), ","); got != "Started,StepAdvanced,IntentSuperseded,RolledBack" {
		t.Fatalf("history %s", got)
	}
}

func TestNewCandidateDoesNotDrainTheOldOneTwice(t *testing.T) {
	s := atStep2(t)
	s.ready["v2"] = 0
	s.r.Spec.Candidate = "v3"
	s.r.Generation++
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	s.wantWeights(map[string]int32{"v1": 95, "v2": 0, "v3": 5})
	if got := strings.Join(s.historyTypes(), ","); got != "Started,StepAdvanced,Started" {
		t.Fatalf("history %s", got)
	}
}

func TestRollbackWhileTheMeshDisagreesWithStatusIsApplied(t *testing.T) {
	s := newSim(t)
	s.reconcile(nil)
	// Status says stable serves 100%, the route says otherwise (a status
	// write lost after the route write): the rollback is not "nothing".
	s.routes = map[string]map[string]int32{"predict": {"v1": 70, "v2": 30}}
	s.intent("rb", v1alpha1.IntentRollback)
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if h := lastHistory(s); h.Type != HistoryRolledBack || h.IntentID != "rb" {
		t.Fatalf("history %+v", h)
	}
}
