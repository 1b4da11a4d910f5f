package validation_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

// inline is the installation that runs with --allow-inline-queries, as the
// fixtures (whose rollout has an inline query) assume.
var inline = validation.Options{AllowInlineQueries: true}

// Without --allow-inline-queries an inline query is refused, naming the
// flag, on create and when an update changes the analysis; an update that
// leaves it alone (a pause, a rollback) only warns, so that a rollout
// admitted before the flag went off can still be steered.
func TestInlineQueriesFollowTheFlag(t *testing.T) {
	ctx := context.Background()
	off := validation.Options{}
	errs, _ := validation.ValidateRollout(ctx, cluster(), rollout(), off)
	assertErrors(t, errs, []wantErr{{"spec.analysis.metrics[2].query", field.ErrorTypeForbidden, "--allow-inline-queries"}})

	old := rollout()
	paused := rollout(func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Intent = &v1alpha1.Intent{ID: "p1", Action: v1alpha1.IntentPause}
	})
	errs, warns := validation.ValidateRolloutUpdate(ctx, cluster(), old, paused, off)
	assertErrors(t, errs, nil)
	if len(warns) == 0 {
		t.Error("an unchanged inline query under a flag that is off gives no warning")
	}
	edited := rollout(func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Analysis.Metrics[2].Query = `sum by (destination_version) (x)`
	})
	errs, _ = validation.ValidateRolloutUpdate(ctx, cluster(), old, edited, off)
	assertErrors(t, errs, []wantErr{{"spec.analysis.metrics[2].query", field.ErrorTypeForbidden, "--allow-inline-queries"}})
	errs, _ = validation.ValidateRolloutUpdate(ctx, cluster(), old, edited, inline)
	assertErrors(t, errs, nil)
}

// spec.readiness.requestsPerPodQuery is an inline query too: refused
// without the flag, checked as PromQL with it.
func TestCapacityQueryFollowsTheFlag(t *testing.T) {
	ctx := context.Background()
	withQuery := func(q string) *v1alpha1.ModelRollout {
		return rollout(func(mr *v1alpha1.ModelRollout) {
			mr.Spec.Analysis.Metrics = mr.Spec.Analysis.Metrics[:2] // no inline metric query
			mr.Spec.Readiness.RequestsPerPodQuery = q
		})
	}
	errs, _ := validation.ValidateRollout(ctx, cluster(), withQuery(`min(model_capacity_rps)`), validation.Options{})
	assertErrors(t, errs, []wantErr{{"spec.readiness.requestsPerPodQuery", field.ErrorTypeForbidden, "--allow-inline-queries"}})
	errs, _ = validation.ValidateRollout(ctx, cluster(), withQuery(`min(model_capacity_rps{service="{{.Service}}"})`), inline)
	assertErrors(t, errs, nil)
	errs, _ = validation.ValidateRollout(ctx, cluster(), withQuery(`min(model_capacity_rps`), inline)
	assertErrors(t, errs, []wantErr{{"spec.readiness.requestsPerPodQuery", field.ErrorTypeInvalid, "not valid PromQL"}})
}
