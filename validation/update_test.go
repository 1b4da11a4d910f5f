package validation_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/validation"
)

func inPhase(p v1alpha1.Phase) func(*v1alpha1.ModelRollout) {
	return func(mr *v1alpha1.ModelRollout) { mr.Status.Phase = p }
}

func TestStableCannotMoveDuringARollout(t *testing.T) {
	for _, phase := range []v1alpha1.Phase{v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseManualSplit} {
		t.Run(string(phase), func(t *testing.T) {
			old := rollout(inPhase(phase))
			mr := rollout(inPhase(phase), func(mr *v1alpha1.ModelRollout) { mr.Spec.Stable = "v3" })
			errs, _ := validation.ValidateRolloutUpdate(context.Background(), cluster(), old, mr, validation.UpdateOptions{})
			assertErrors(t, errs, []wantErr{{"spec.stable", field.ErrorTypeForbidden,
				`cannot change from "v1" to "v3" while the rollout is ` + string(phase) + ": run `fulcrumctl -n ml promote fraud` to make the candidate stable, or `fulcrumctl -n ml rollback fraud` to end the rollout"}})

			errs, _ = validation.ValidateRolloutUpdate(context.Background(), cluster(), old, mr, validation.UpdateOptions{AllowStableChange: true})
			assertErrors(t, errs, nil)
		})
	}
	for _, phase := range []v1alpha1.Phase{"", v1alpha1.PhaseStable, v1alpha1.PhasePromoted, v1alpha1.PhaseRolledBack, v1alpha1.PhaseFailed} {
		t.Run("idle "+string(phase), func(t *testing.T) {
			old := rollout(inPhase(phase))
			mr := rollout(inPhase(phase), func(mr *v1alpha1.ModelRollout) { mr.Spec.Stable = "v3" })
			errs, _ := validation.ValidateRolloutUpdate(context.Background(), cluster(), old, mr, validation.UpdateOptions{})
			assertErrors(t, errs, nil)
		})
	}
}

func TestUpdateKeepsBrokenRolloutsSteerable(t *testing.T) {
	l := cluster()
	delete(l.dr, "fraud")
	delete(l.vs, "fraud")
	old := rollout(inPhase(v1alpha1.PhaseProgressing))

	// A pause intent on a rollout whose references vanished is admitted,
	// and the broken references come back as warnings.
	mr := rollout(inPhase(v1alpha1.PhaseProgressing), func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Intent = &v1alpha1.Intent{ID: "p1", Action: v1alpha1.IntentPause}
	})
	errs, warns := validation.ValidateRolloutUpdate(context.Background(), l, old, mr, validation.UpdateOptions{})
	assertErrors(t, errs, nil)
	joined := strings.Join(warns, "\n")
	for _, w := range []string{
		"unchanged but still wrong: spec.virtualService.name: Invalid value: \"fraud\": VirtualService ml/fraud does not exist",
		"unchanged but still wrong: spec.destinationRule: Invalid value: \"fraud\": DestinationRule ml/fraud does not exist",
	} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings lack %q:\n%s", w, joined)
		}
	}

	// Changing the broken field itself is checked.
	mr = rollout(func(mr *v1alpha1.ModelRollout) { mr.Spec.DestinationRule = "still-missing" })
	errs, _ = validation.ValidateRolloutUpdate(context.Background(), l, old, mr, validation.UpdateOptions{})
	assertErrors(t, errs, []wantErr{{"spec.destinationRule", field.ErrorTypeInvalid, "DestinationRule ml/still-missing does not exist"}})

	// A split naming subsets is checked even though the DestinationRule did not change.
	mr = rollout(func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Intent = &v1alpha1.Intent{ID: "s1", Action: v1alpha1.IntentSplit, Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 70}, {Subset: "v2", Weight: 30}}}
	})
	errs, _ = validation.ValidateRolloutUpdate(context.Background(), l, old, mr, validation.UpdateOptions{})
	assertErrors(t, errs, []wantErr{{"spec.destinationRule", field.ErrorTypeInvalid, "DestinationRule ml/fraud does not exist"}})
}

func TestUpdateSkipsMetadataOnlyAndDeletingRollouts(t *testing.T) {
	l := cluster()
	delete(l.vs, "fraud")
	old := rollout(inPhase(v1alpha1.PhaseProgressing))

	mr := rollout(inPhase(v1alpha1.PhaseProgressing), func(mr *v1alpha1.ModelRollout) { mr.Finalizers = []string{"fulcrum.dev/routes"} })
	if errs, warns := validation.ValidateRolloutUpdate(context.Background(), l, old, mr, validation.UpdateOptions{}); len(errs)+len(warns) != 0 {
		t.Errorf("metadata-only update: errs %v warns %v", errs, warns)
	}

	mr = rollout(inPhase(v1alpha1.PhaseProgressing), func(mr *v1alpha1.ModelRollout) {
		mr.DeletionTimestamp = &metav1.Time{}
		mr.Spec.Stable = "v9"
	})
	if errs, _ := validation.ValidateRolloutUpdate(context.Background(), l, old, mr, validation.UpdateOptions{}); len(errs) != 0 {
		t.Errorf("deleting rollout: errs %v", errs)
	}
}
