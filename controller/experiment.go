package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/istio"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
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
	svc := r.service(mr, w.dr)
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

// applyExperiment writes the experiment's stickiness, or removes the
// rollout's when none is wanted and clear says so, on top of weights
// already computed.
func applyExperiment(vs *unstructured.Unstructured, changed bool, t istio.Target, mr *v1alpha1.ModelRollout, want *istio.Experiment, clear bool) (*unstructured.Unstructured, bool, error) {
	var next *unstructured.Unstructured
	var c bool
	var err error
	switch {
	case want != nil:
		next, c, err = istio.SetExperiment(vs, t, *want)
	case !clear:
		return vs, changed, nil
	default:
		cookie := ""
		if spec := rollout.ExperimentSpec(mr); spec != nil {
			cookie = spec.Stickiness.CookieName
		}
		next, c, err = istio.ClearExperiment(vs, t, mr.Name, cookie)
	}
	if err != nil {
		return nil, false, err
	}
	return next, changed || c, nil
}
