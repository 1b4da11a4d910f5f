package validation

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/analysis/templates"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

var experimentPath = specPath.Child("strategy", "experiment")

// checkExperiment checks what the CRD's rules cannot: the control is
// spec.stable, the candidate that starts the experiment is one of its arms,
// every arm is a subset of the DestinationRule (subsets nil: not known),
// and the reward names a built-in reward template of the right kind.
func checkExperiment(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout, subsets []string) field.ErrorList {
	e := mr.Spec.Strategy.Experiment
	if e == nil || len(e.Arms) == 0 {
		return nil
	}
	var errs field.ErrorList
	arms := experimentPath.Child("arms")
	if e.Arms[0].Subset != mr.Spec.Stable {
		errs = append(errs, field.Invalid(arms.Index(0).Child("subset"), e.Arms[0].Subset, fmt.Sprintf(
			"the first arm is the control, the version users go back to when the experiment ends: it must be spec.stable (%s); list %s first", mr.Spec.Stable, mr.Spec.Stable)))
	}
	var names []string
	for i, a := range e.Arms {
		names = append(names, a.Subset)
		if subsets != nil && !slices.Contains(subsets, a.Subset) {
			errs = append(errs, field.Invalid(arms.Index(i).Child("subset"), a.Subset, fmt.Sprintf(
				"arm subset %q is not defined in DestinationRule %s (it defines: %s); add the subset or name one that exists", a.Subset, mr.Spec.DestinationRule, listOrNone(subsets))))
		}
	}
	if c := mr.Spec.Candidate; c != "" && !slices.Contains(names[1:], c) {
		errs = append(errs, field.Invalid(candPath, c, fmt.Sprintf(
			"spec.candidate starts the experiment and must be one of its arms other than the control (%s): add %s to spec.strategy.experiment.arms, or name an arm", listOrNone(names[1:]), c)))
	}
	return append(errs, checkReward(ctx, l, mr)...)
}

// checkReward: the reward names a built-in reward template or a
// MetricTemplate with successQuery (Proportion) or sumQuery (Mean), and
// spec.strategy.experiment.reward.kind matches it.
func checkReward(ctx context.Context, l Lookups, mr *v1alpha1.ModelRollout) field.ErrorList {
	r := mr.Spec.Strategy.Experiment.Reward
	p := experimentPath.Child("reward")
	kind := r.Kind
	if kind == "" {
		kind = v1alpha1.RewardProportion
	}
	builtin := map[string]v1alpha1.RewardKind{analysis.RewardFeedback: v1alpha1.RewardProportion, analysis.RewardValue: v1alpha1.RewardMean}
	k, ok := builtin[r.Template]
	if _, guardrail := templates.Builtin(r.Template); guardrail && !ok {
		return field.ErrorList{field.Invalid(p.Child("template"), r.Template, fmt.Sprintf(
			"%s is a built-in analysis template (a guardrail for spec.analysis), not a reward: use %s or %s, or a MetricTemplate with successQuery (or sumQuery) and sampleQuery",
			r.Template, analysis.RewardFeedback, analysis.RewardValue))}
	}
	if !ok {
		mt, err := l.MetricTemplate(ctx, mr.Namespace, r.Template)
		switch {
		case apierrors.IsNotFound(err):
			return field.ErrorList{field.Invalid(p.Child("template"), r.Template, fmt.Sprintf(
				"no MetricTemplate %s/%s and no built-in reward template of that name: use %s or %s, or create a MetricTemplate with successQuery (or sumQuery) and sampleQuery",
				mr.Namespace, r.Template, analysis.RewardFeedback, analysis.RewardValue))}
		case err != nil:
			return field.ErrorList{field.InternalError(p.Child("template"), fmt.Errorf("read MetricTemplate %s/%s: %w", mr.Namespace, r.Template, err))}
		case mt.Spec.SuccessQuery != "":
			k = v1alpha1.RewardProportion
		case mt.Spec.SumQuery != "":
			k = v1alpha1.RewardMean
		default:
			return field.ErrorList{field.Invalid(p.Child("template"), r.Template, fmt.Sprintf(
				"MetricTemplate %s/%s is not a reward: give it successQuery (a Proportion) or sumQuery (a Mean), with sampleQuery", mr.Namespace, r.Template))}
		}
	}
	if k != kind {
		return field.ErrorList{field.Invalid(p.Child("kind"), kind, fmt.Sprintf("template %s is a %s reward: set kind %s", r.Template, k, k))}
	}
	return nil
}
