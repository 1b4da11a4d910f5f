package validation_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

func withExperiment(arms ...string) func(*v1alpha1.ModelRollout) {
	return func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Strategy.Canary = nil
		e := &v1alpha1.ExperimentStrategy{Reward: v1alpha1.Reward{Template: "model-feedback", MinEffect: 0.02}}
		for _, a := range arms {
			e.Arms = append(e.Arms, v1alpha1.ExperimentArm{Subset: a, Weight: int32(100 / len(arms))})
		}
		mr.Spec.Strategy.Experiment = e
	}
}

// An experiment is admitted when its control is stable, its candidate an
// arm and its arms subsets; each mistake is named with its fix.
func TestValidateExperiment(t *testing.T) {
	tests := []struct {
		name string
		mr   *v1alpha1.ModelRollout
		want []wantErr
	}{
		{"valid", rollout(withExperiment("v1", "v2")), nil},
		{"control is not stable", rollout(withExperiment("v2", "v1")), []wantErr{
			{"spec.strategy.experiment.arms[0].subset", field.ErrorTypeInvalid, "must be spec.stable (v1); list v1 first"},
			{"spec.candidate", field.ErrorTypeInvalid, "must be one of its arms other than the control"},
		}},
		{"arm not a subset", rollout(withExperiment("v1", "v2", "v9")), []wantErr{
			{"spec.strategy.experiment.arms[2].subset", field.ErrorTypeInvalid, `arm subset "v9" is not defined in DestinationRule fraud`},
		}},
		{"candidate not an arm", rollout(withExperiment("v1", "v3")), []wantErr{
			{"spec.candidate", field.ErrorTypeInvalid, `must be one of its arms other than the control ("v3")`},
		}},
		{"reward template unknown", rollout(withExperiment("v1", "v2"), func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Strategy.Experiment.Reward.Template = "istio-error-rate"
		}), []wantErr{{"spec.strategy.experiment.reward.template", field.ErrorTypeInvalid, "istio-error-rate is a built-in analysis template (a guardrail for spec.analysis), not a reward"}}},
		{"reward MetricTemplate missing", rollout(withExperiment("v1", "v2"), func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Strategy.Experiment.Reward.Template = "clicks"
		}), []wantErr{{"spec.strategy.experiment.reward.template", field.ErrorTypeInvalid, "no MetricTemplate ml/clicks and no built-in reward template"}}},
		{"MetricTemplate that is no reward", rollout(withExperiment("v1", "v2"), func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Strategy.Experiment.Reward.Template = "errors"
		}), []wantErr{{"spec.strategy.experiment.reward.template", field.ErrorTypeInvalid, "MetricTemplate ml/errors is not a reward: give it successQuery"}}},
		{"reward MetricTemplate of another kind", rollout(withExperiment("v1", "v2"), func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Strategy.Experiment.Reward.Template = "conversions"
			mr.Spec.Strategy.Experiment.Reward.Kind = v1alpha1.RewardMean
		}), []wantErr{{"spec.strategy.experiment.reward.kind", field.ErrorTypeInvalid, "template conversions is a Proportion reward: set kind Proportion"}}},
		{"reward MetricTemplate", rollout(withExperiment("v1", "v2"), func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Strategy.Experiment.Reward.Template = "conversions"
		}), nil},
		{"reward kind wrong", rollout(withExperiment("v1", "v2"), func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Strategy.Experiment.Reward.Template = "model-reward"
		}), []wantErr{{"spec.strategy.experiment.reward.kind", field.ErrorTypeInvalid, "template model-reward is a Mean reward: set kind Mean"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, _ := validation.ValidateRollout(context.Background(), cluster(), tt.mr, inline)
			assertErrors(t, errs, tt.want)
		})
	}
}
