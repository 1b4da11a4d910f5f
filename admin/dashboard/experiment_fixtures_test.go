package dashboard_test

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fulcrumv1 "github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// experimentReason is what the experiment's decision said when v2 won.
const experimentReason = "v2 beats v1 by 0.027 (0.018 to 0.036) and v3 by 0.024, more than the minimum effect 0.01, at 99% confidence over all arms and looks"

// recsExperiment is ml/recs running a three-arm experiment (v1 the
// control), its reward read and no outcome yet; experimentDecided gives it
// its outcome as the controller would.
func recsExperiment(now time.Time) *fulcrumv1.ModelRollout {
	min := func(m int) time.Time { return now.Add(time.Duration(-m) * time.Minute) }
	r := rollout("ml", "recs", "v1", "v2", fulcrumv1.PhaseProgressing, min(60*24*5))
	r.Spec.Strategy = fulcrumv1.Strategy{Experiment: &fulcrumv1.ExperimentStrategy{
		Arms:   []fulcrumv1.ExperimentArm{{Subset: "v1", Weight: 40}, {Subset: "v2", Weight: 30}, {Subset: "v3", Weight: 30}},
		Reward: fulcrumv1.Reward{Template: "model-feedback", Kind: fulcrumv1.RewardProportion, MinEffect: 0.01},
	}}
	r.Status.Weights = weights("v1", 40, "v2", 30, "v3", 30)
	r.Status.CandidateWeight = 30
	r.Status.Step = ptr(int32(0))
	r.Status.RolloutStartedAt = atp(min(180))
	r.Status.Message = "experiment running: reward read every minute"
	r.Status.Experiment = &fulcrumv1.ExperimentStatus{
		StartedAt: atp(min(178)), LastReadAt: atp(min(1)),
		Reason: "v2 leads v1 by 0.027 (0.018 to 0.036); the decision waits for spec.strategy.experiment.minDuration (1h0m0s, 2m0s to go)",
		Arms: []fulcrumv1.ArmStatus{
			{Subset: "v1", Weight: 40, Samples: 15200, Value: ptr(0.101), Lower: ptr(0.095), Upper: ptr(0.107)},
			{Subset: "v2", Weight: 30, Samples: 11400, Value: ptr(0.128), Lower: ptr(0.121), Upper: ptr(0.135), Lift: ptr(0.027), LiftLower: ptr(0.018), LiftUpper: ptr(0.036)},
			{Subset: "v3", Weight: 30, Samples: 11350, Value: ptr(0.104), Lower: ptr(0.097), Upper: ptr(0.111), Lift: ptr(0.003), LiftLower: ptr(-0.006), LiftUpper: ptr(0.012)},
		},
	}
	r.Status.History = []fulcrumv1.HistoryEntry{
		{Time: at(min(180)), Type: fulcrumv1.HistoryStarted, From: fulcrumv1.PhaseStable, To: fulcrumv1.PhaseProgressing, Step: ptr(int32(0)),
			Weights: weights("v1", 40, "v2", 30, "v3", 30), Actor: "ci-pipeline", Reason: "recs ranker A/B: v2 and v3 against v1", IntentID: "e1"},
	}
	return r
}

// experimentDecided ends the experiment with v2 the winner, kept as a
// split until a person acts (onWinner Keep).
func experimentDecided(r *fulcrumv1.ModelRollout) {
	now := metav1.Now()
	es := r.Status.Experiment
	es.Outcome, es.Winner, es.Reason, es.DecidedAt = fulcrumv1.ExperimentWinner, "v2", experimentReason, &now
	r.Status.Phase = fulcrumv1.PhaseManualSplit
	r.Status.Step = nil
	r.Status.Message = "experiment ended: v2 wins"
	r.Status.History = append(r.Status.History, fulcrumv1.HistoryEntry{
		Time: now, Type: fulcrumv1.HistoryExperimentEnded, From: fulcrumv1.PhaseProgressing, To: fulcrumv1.PhaseManualSplit,
		Weights: weights("v1", 40, "v2", 30, "v3", 30), Actor: "fulcrum",
		Reason: "experiment: " + experimentReason + "; the split is kept until a person acts (spec.strategy.experiment.onWinner Keep)",
	})
}
