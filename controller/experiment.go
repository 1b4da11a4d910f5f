package controller

import (
	"context"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// gatherRewards reads the experiment's reward per arm when a look is due
// (rollout.RewardArms). A reward that cannot be read is a RewardProblem:
// the experiment goes on, undecided, and says why.
func (r *Reconciler) gatherRewards(ctx context.Context, mr *v1alpha1.ModelRollout, w *world) {
	arms, since := rollout.RewardArms(mr, w.observed.Now)
	if arms == nil {
		return
	}
	if r.rewards == nil {
		w.observed.RewardProblem = "no Prometheus is configured (--prometheus-url), so the experiment's reward cannot be read"
		return
	}
	svc := w.service(mr)
	got, err := r.rewards.Rewards(ctx, mr.Namespace, svc, mr.Spec.Strategy.Experiment.Reward.Template, arms, since, w.observed.Now)
	if err != nil {
		w.observed.RewardProblem = err.Error()
		return
	}
	w.observed.Rewards = got
}

// experimentEdit is the experiment's stickiness the decided status needs on
// the mesh, or nil: the rollout's sticky routes and cookies then go.
func experimentEdit(mr *v1alpha1.ModelRollout, decided *v1alpha1.ModelRolloutStatus) *istio.Experiment {
	spec := rollout.ExperimentWanted(mr, decided)
	if spec == nil {
		return nil
	}
	e := &istio.Experiment{Rollout: mr.Name}
	for _, a := range spec.Arms {
		e.Arms = append(e.Arms, a.Subset)
	}
	switch spec.Stickiness.Mode {
	case v1alpha1.StickinessCookie:
		e.Cookie, e.MaxAge = spec.Stickiness.CookieName, spec.Stickiness.MaxAge.Duration
	case v1alpha1.StickinessHeader:
		e.Header = spec.Stickiness.Header
	}
	return e
}

// guardrails runs this reconcile's analysis round: spec.candidate against
// the control, as at a canary step; and, in an experiment of three or more
// arms, every other arm too, each against the control, so that any arm
// that hurts users ends the experiment. The round kept is the first
// failing arm's (its messages name the arm), else the worst verdict's.
//
// Only spec.candidate's round continues the previous one (Previous keeps
// a sequential test's running bounds): the round in status is one arm's,
// and another arm's bounds must never carry over. Each other arm's
// always-valid test is judged on its own counts at every look, which stays
// valid, a little less tight.
func (r *Reconciler) guardrails(ctx context.Context, mr *v1alpha1.ModelRollout, w *world) *v1alpha1.AnalysisRound {
	round := r.analyze(ctx, mr, w)
	spec := rollout.ExperimentSpec(mr)
	es := mr.Status.Experiment
	if spec == nil || len(spec.Arms) < 3 || es == nil || es.Outcome != "" || es.StartedAt == nil {
		return round
	}
	worst := round
	for _, a := range spec.Arms[1:] {
		if a.Subset == mr.Status.Candidate || worst.Verdict == v1alpha1.VerdictFail {
			continue
		}
		other := mr.DeepCopy()
		other.Status.Candidate = a.Subset
		if st := other.Status.Analysis; st != nil {
			st.RecentRounds = nil // no Previous from another arm
		}
		rd := r.analyze(ctx, other, w)
		for i := range rd.Metrics {
			rd.Metrics[i].Message = v1alpha1.CutText("arm "+a.Subset+": "+rd.Metrics[i].Message, v1alpha1.MaxMetricMessage)
		}
		if verdictRank(rd.Verdict) > verdictRank(worst.Verdict) {
			worst = rd
		}
	}
	return worst
}

// verdictRank orders verdicts from best to worst for guardrails.
func verdictRank(v v1alpha1.Verdict) int {
	switch v {
	case v1alpha1.VerdictFail:
		return 3
	case v1alpha1.VerdictError:
		return 2
	case v1alpha1.VerdictInconclusive:
		return 1
	}
	return 0
}
