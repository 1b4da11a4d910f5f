package rollout

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fulcrum-ml/fulcrum/analysis/experiment"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func withExperiment(onWinner v1alpha1.WinnerPolicy) func(*v1alpha1.ModelRollout) {
	return func(r *v1alpha1.ModelRollout) {
		r.Spec.Strategy.Canary = nil
		r.Spec.Strategy.Experiment = &v1alpha1.ExperimentStrategy{
			Arms:        []v1alpha1.ExperimentArm{{Subset: "v1", Weight: 50}, {Subset: "v2", Weight: 50}},
			Reward:      v1alpha1.Reward{Template: "model-feedback", MinEffect: 0.02},
			MinDuration: metav1.Duration{Duration: 10 * time.Minute}, MaxDuration: metav1.Duration{Duration: time.Hour},
			OnWinner: onWinner,
		}
	}
}

// counts are n trials per arm at the given success rates.
func counts(n float64, rates ...float64) []experiment.ArmData {
	var out []experiment.ArmData
	for i, p := range rates {
		out = append(out, experiment.ArmData{Name: []string{"v1", "v2", "v3"}[i], Successes: p * n, Trials: n})
	}
	return out
}

// A clear winner is named only after minDuration; with Keep, the split
// stays (ManualSplit) and the experiment's stickiness is still wanted.
func TestExperimentWinnerKept(t *testing.T) {
	s := newSim(t, withExperiment(v1alpha1.WinnerKeep))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	if ExperimentWanted(s.r, &s.r.Status) == nil {
		t.Fatal("stickiness not wanted while the experiment runs")
	}
	if arms, _ := RewardArms(s.r, s.clk.Now()); !slices.Equal(arms, []string{"v1", "v2"}) {
		t.Fatalf("reward arms %v", arms)
	}

	s.rewards = counts(200000, 0.10, 0.13)
	s.clk.Step(time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	if m := s.r.Status.Message; !strings.HasPrefix(m, "experiment: v1=50 v2=50; v2 is higher") {
		t.Fatalf("message while running %q", m)
	}
	if es := s.r.Status.Experiment; es.Outcome != "" || !strings.Contains(es.Reason, "waits for spec.strategy.experiment.minDuration") {
		t.Fatalf("experiment %+v, want it running and waiting for minDuration", es)
	}

	s.clk.Step(10 * time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseManualSplit)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
	es := s.r.Status.Experiment
	if es.Outcome != v1alpha1.ExperimentWinner || es.Winner != "v2" || es.DecidedAt == nil {
		t.Fatalf("experiment %+v, want v2 the winner", es)
	}
	if a := es.Arms[1]; a.Lift == nil || *a.Lift < 0.029 || *a.Lift > 0.031 || a.LiftLower == nil || *a.LiftLower < 0.02 {
		t.Fatalf("v2's lift %+v, want 0.03 with a lower bound above the minimum effect", a)
	}
	s.wantEvent(ReasonExperimentEnded)
	if m := s.r.Status.Message; !strings.HasPrefix(m, "experiment ended Winner: v2 is higher") || !strings.Contains(m, "the split is kept until a person acts") {
		t.Fatalf("message %q", m)
	}
	if ExperimentWanted(s.r, &s.r.Status) == nil {
		t.Fatal("the kept split lost its stickiness")
	}
	// A person acting ends the kept split and its stickiness.
	s.intent("split", v1alpha1.IntentSplit, v1alpha1.SubsetWeight{Subset: "v1", Weight: 0}, v1alpha1.SubsetWeight{Subset: "v2", Weight: 100})
	s.reconcile(nil)
	if ExperimentWanted(s.r, &s.r.Status) != nil {
		t.Fatal("stickiness still wanted after a person's split")
	}
}

// With Promote, the winner becomes stable.
func TestExperimentWinnerPromoted(t *testing.T) {
	s := newSim(t, withExperiment(v1alpha1.WinnerPromote))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.rewards = counts(200000, 0.10, 0.13)
	s.clk.Step(11 * time.Minute)
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	s.wantWeights(map[string]int32{"v2": 100})
	if !d.Promote || s.r.Spec.Stable != "v2" {
		t.Fatalf("promote %v, stable %s", d.Promote, s.r.Spec.Stable)
	}
}

// No difference worth having: back to stable, outcome recorded; at the
// deadline, inconclusive.
func TestExperimentEndsWithoutWinner(t *testing.T) {
	s := newSim(t, withExperiment(v1alpha1.WinnerKeep))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.rewards = counts(2000000, 0.10, 0.1005)
	s.clk.Step(11 * time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if es := s.r.Status.Experiment; es.Outcome != v1alpha1.ExperimentNoDifference {
		t.Fatalf("experiment %+v, want NoDifference", es)
	}
	if ExperimentWanted(s.r, &s.r.Status) != nil {
		t.Fatal("stickiness still wanted after the experiment ended")
	}

	s = newSim(t, withExperiment(v1alpha1.WinnerKeep))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.rewards = counts(500, 0.10, 0.11)
	s.clk.Step(61 * time.Minute)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	if es := s.r.Status.Experiment; es.Outcome != v1alpha1.ExperimentInconclusive {
		t.Fatalf("experiment %+v, want Inconclusive at the deadline", es)
	}
}

// A rollback (a person, or a failing guardrail) stops the experiment.
func TestExperimentStoppedByRollback(t *testing.T) {
	s := newSim(t, withExperiment(v1alpha1.WinnerKeep))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.intent("rb", v1alpha1.IntentRollback)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if es := s.r.Status.Experiment; es.Outcome != v1alpha1.ExperimentStopped || !strings.Contains(es.Reason, "stopped by alice") {
		t.Fatalf("experiment %+v, want Stopped by alice", es)
	}
}

// A candidate that is not an arm, or a control that is not stable, is a
// problem named with its fix; nothing is written.
func TestExperimentProblems(t *testing.T) {
	s := newSim(t, withExperiment(v1alpha1.WinnerKeep))
	s.r.Spec.Candidate = "v3"
	d := s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseFailed)
	if d.Weights != nil || !strings.Contains(s.r.Status.Message, "spec.candidate v3 is not an arm of spec.strategy.experiment") {
		t.Fatalf("weights %v, message %q", d.Weights, s.r.Status.Message)
	}
	s = newSim(t, withExperiment(v1alpha1.WinnerKeep), func(r *v1alpha1.ModelRollout) {
		r.Spec.Strategy.Experiment.Arms[0], r.Spec.Strategy.Experiment.Arms[1] = r.Spec.Strategy.Experiment.Arms[1], r.Spec.Strategy.Experiment.Arms[0]
	})
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	if !strings.Contains(s.r.Status.Message, "the first arm is the control") {
		t.Fatalf("message %q", s.r.Status.Message)
	}
}

// An arm without Ready pods holds the experiment's start.
func TestExperimentWaitsForPods(t *testing.T) {
	s := newSim(t, withExperiment(v1alpha1.WinnerKeep))
	s.ready["v2"] = 0
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
	if s.r.Status.Experiment.StartedAt != nil {
		t.Fatal("started without v2's pods")
	}
	s.ready["v2"] = 1
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 50, "v2": 50})
}

// A person's promote or split during the experiment ends it with outcome
// Stopped; a pause and resume goes on judging.
func TestExperimentEndedByAPerson(t *testing.T) {
	s := newSim(t, withExperiment(v1alpha1.WinnerKeep))
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.intent("p", v1alpha1.IntentPause)
	s.reconcile(nil)
	s.intent("r", v1alpha1.IntentResume)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseProgressing)
	if s.r.Status.StepStartedAt == nil || s.r.Status.Experiment.Outcome != "" {
		t.Fatalf("after resume: stepStartedAt %v, experiment %+v", s.r.Status.StepStartedAt, s.r.Status.Experiment)
	}
	s.intent("promote", v1alpha1.IntentPromote)
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhasePromoted)
	if es := s.r.Status.Experiment; es.Outcome != v1alpha1.ExperimentStopped || !strings.Contains(es.Reason, "the rollout is Promoted") {
		t.Fatalf("experiment %+v, want Stopped by the promotion", es)
	}
}

// The control winning ends the experiment with everyone on the control,
// whatever onWinner says: keeping the split would leave users on a loser.
func TestExperimentControlWins(t *testing.T) {
	for _, policy := range []v1alpha1.WinnerPolicy{v1alpha1.WinnerKeep, v1alpha1.WinnerPromote} {
		s := newSim(t, withExperiment(policy))
		s.r.Spec.Candidate = "v2"
		s.reconcile(nil)
		s.rewards = counts(200000, 0.13, 0.10)
		s.clk.Step(11 * time.Minute)
		s.reconcile(nil)
		s.wantPhase(v1alpha1.PhaseRolledBack)
		s.wantWeights(map[string]int32{"v1": 100, "v2": 0})
		if es := s.r.Status.Experiment; es.Outcome != v1alpha1.ExperimentWinner || es.Winner != "v1" {
			t.Fatalf("%s: experiment %+v, want v1 the winner", policy, es)
		}
		if ExperimentWanted(s.r, &s.r.Status) != nil {
			t.Fatalf("%s: stickiness still wanted", policy)
		}
	}
}

// An arm other than the candidate losing its pods ends the experiment:
// everyone back on the control, never its weight written back each round.
func TestExperimentArmWithoutPodsStops(t *testing.T) {
	s := newSim(t, withExperiment(v1alpha1.WinnerKeep), func(r *v1alpha1.ModelRollout) {
		r.Spec.Strategy.Experiment.Arms = []v1alpha1.ExperimentArm{{Subset: "v1", Weight: 34}, {Subset: "v2", Weight: 33}, {Subset: "v3", Weight: 33}}
	})
	s.ready["v3"] = 1
	s.r.Spec.Candidate = "v2"
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 34, "v2": 33, "v3": 33})
	s.ready["v3"] = 0
	s.reconcile(nil)
	s.wantPhase(v1alpha1.PhaseRolledBack)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0, "v3": 0})
	if es := s.r.Status.Experiment; es.Outcome != v1alpha1.ExperimentStopped || !strings.Contains(es.Reason, "subset v3 has 0 Ready pod") {
		t.Fatalf("experiment %+v, want Stopped naming v3's missing pods", es)
	}
	s.reconcile(nil)
	s.wantWeights(map[string]int32{"v1": 100, "v2": 0, "v3": 0})
}
