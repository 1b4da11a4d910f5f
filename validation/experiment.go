package validation

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/analysis"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

var experimentPath = specPath.Child("strategy", "experiment")

// checkExperiment checks what the CRD's rules cannot: the control is
// spec.stable, the candidate that starts the experiment is one of its arms,
// every arm is a subset of the DestinationRule (subsets nil: not known),
// and the reward names a built-in reward template of the right kind.
func checkExperiment(mr *v1alpha1.ModelRollout, subsets []string) field.ErrorList {
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
	reward := experimentPath.Child("reward")
	want := map[string]v1alpha1.RewardKind{analysis.RewardFeedback: v1alpha1.RewardProportion, analysis.RewardValue: v1alpha1.RewardMean}
	kind := e.Reward.Kind
	if kind == "" {
		kind = v1alpha1.RewardProportion
	}
	switch k, ok := want[e.Reward.Template]; {
	case !ok:
		errs = append(errs, field.NotSupported(reward.Child("template"), e.Reward.Template, []string{analysis.RewardFeedback, analysis.RewardValue}))
	case k != kind:
		errs = append(errs, field.Invalid(reward.Child("kind"), kind, fmt.Sprintf("template %s is a %s reward: set kind %s", e.Reward.Template, k, k)))
	}
	return errs
}
