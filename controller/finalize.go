package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// Finalizer holds a ModelRollout with spec.onDelete RestoreStable (the
// default) until its managed routes are back at stable 100%. Deleting a
// rollout mid-canary must not leave traffic on a version nobody manages.
const Finalizer = "fulcrum.dev/restore-stable"

// ensureFinalizer adds the finalizer when the rollout restores stable on
// deletion, and removes it when the user switched to Keep.
func (r *Reconciler) ensureFinalizer(ctx context.Context, mr *v1alpha1.ModelRollout) (*v1alpha1.ModelRollout, error) {
	want := mr.Spec.OnDelete != v1alpha1.OnDeleteKeep
	if controllerutil.ContainsFinalizer(mr, Finalizer) == want {
		return mr, nil
	}
	upd := mr.DeepCopy()
	if want {
		controllerutil.AddFinalizer(upd, Finalizer)
	} else {
		controllerutil.RemoveFinalizer(upd, Finalizer)
	}
	err := r.client.Update(ctx, upd)
	r.metrics.wrote("spec", err)
	if err != nil {
		return nil, err
	}
	return upd, nil
}

// finalize runs when the rollout is being deleted: it puts stable back at
// 100% on the managed routes (spec.onDelete RestoreStable), then lets the
// object go. What cannot be restored never blocks deletion: a VirtualService,
// DestinationRule or stable subset that is gone, routes another rollout owns,
// or routes that no longer resolve. Only a failed API call is retried. It is
// idempotent, so a controller killed halfway simply runs it again.
func (r *Reconciler) finalize(ctx context.Context, mr *v1alpha1.ModelRollout) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(mr, Finalizer) {
		r.metrics.forget(mr.Namespace, mr.Name)
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx)
	if r.warmup != nil {
		r.warmup.Stop(rolloutKey(mr))
	}
	reason, note := rollout.ReasonRestoredStable, ""
	if mr.Spec.OnDelete == v1alpha1.OnDeleteKeep {
		reason, note = rollout.ReasonDeletionKeptWeights, "spec.onDelete is Keep: the weights stay as they are"
	} else {
		n, err := r.restoreStable(ctx, mr)
		if err != nil {
			r.metrics.failed("virtualservice")
			return ctrl.Result{}, err
		}
		note = n
		if n == "" {
			note = fmt.Sprintf("deleted: %s serves 100%% on the managed routes again", mr.Spec.Stable)
		} else {
			reason = rollout.ReasonDeletionKeptWeights
		}
		// What Fulcrum scaled goes back too, once the weights are safe.
		scaled, err := r.restoreScaling(ctx, mr)
		if err != nil {
			r.metrics.failed("scale")
			return ctrl.Result{}, err
		}
		if scaled != "" {
			note += "; " + scaled
		}
	}
	upd := mr.DeepCopy()
	controllerutil.RemoveFinalizer(upd, Finalizer)
	err := r.client.Update(ctx, upd)
	r.metrics.wrote("spec", err)
	if apierrors.IsNotFound(err) {
		err = nil
	}
	if err != nil {
		return r.conflictOr(ctx, err, "finalizer")
	}
	typ := rollout.EventTypeNormal
	if reason == rollout.ReasonDeletionKeptWeights && mr.Spec.OnDelete != v1alpha1.OnDeleteKeep {
		typ = rollout.EventTypeWarning
	}
	if r.recorder != nil {
		r.recorder.Eventf(mr, nil, typ, reason, "Delete", "%s", note)
	}
	log.Info(note, "reason", reason)
	r.metrics.forget(mr.Namespace, mr.Name)
	return ctrl.Result{}, nil
}

// restoreStable writes stable 100% to the managed routes. It returns a note
// when there was nothing it could or should write, and an error only for
// failed API calls.
func (r *Reconciler) restoreStable(ctx context.Context, mr *v1alpha1.ModelRollout) (string, error) {
	rt, err := r.routers.For(mr)
	if err != nil {
		return "deleted: the weights were left as they are: " + err.Error(), nil
	}
	st, err := rt.Read(ctx, mr)
	if err != nil {
		return "", err
	}
	if st.Object == nil {
		return "deleted: nothing to restore: " + st.Problem, nil
	}
	if st.Problem != "" {
		return "deleted: the weights were left as they are: " + st.Problem, nil
	}
	conflict, err := r.routeConflict(ctx, mr, rt, st.Object)
	if err != nil {
		return "", err
	}
	if conflict != "" {
		return "deleted without touching the routes: " + conflict, nil
	}
	w := &world{route: rt, st: st}
	// The shadow stage's mirror and the warm-up route go with the rollout
	// (m.warmup nil removes the route).
	m := mirrorEdit{clearWarmup: true, clearExperiment: true}
	if mr.Status.Shadow != nil {
		m.clear = mr.Status.Shadow.Subset
	}
	if err := r.writeWeights(ctx, mr, w, []v1alpha1.SubsetWeight{{Subset: mr.Spec.Stable, Weight: 100}}, m); err != nil {
		return "", err
	}
	return "", nil
}
