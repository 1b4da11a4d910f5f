package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// Reading and writing the versions' workloads for spec.scaling. What to
// change is the state machine's (rollout/scaling.go); here are the reads it
// needs and the writes it asks for. A workload that cannot be read or
// written never fails a reconcile: a rollback must not wait for a
// Deployment.

// rbacHint ends the messages of reads and writes refused by RBAC.
const rbacHint = "grant fulcrum get, list, watch and patch on deployments (apps) and horizontalpodautoscalers (autoscaling), as the chart's ClusterRole does"

// gatherScaling reads the Deployment and HPA of the candidate and of a
// pending scale-down's version, and every field status.scaling recorded.
func (r *Reconciler) gatherScaling(ctx context.Context, mr *v1alpha1.ModelRollout, w *world) {
	sc, st := mr.Spec.Scaling, mr.Status.Scaling
	if sc == nil && st == nil {
		return
	}
	o := &w.observed
	o.Workloads = map[string]rollout.Workload{}
	o.ScaleValues = map[rollout.ScaleTarget]int32{}
	fail := func(err error) {
		if o.ScaleProblem == "" {
			o.ScaleProblem = fmt.Sprintf("the versions' workloads cannot be read (%v)", err)
			if apierrors.IsForbidden(err) {
				o.ScaleProblem += ": " + rbacHint
			}
		}
	}
	if sc != nil {
		subsets := []string{mr.Spec.Candidate, mr.Status.Candidate}
		if st != nil && st.ScaleDown != nil {
			subsets = append(subsets, st.ScaleDown.Subset)
		}
		for _, s := range subsets {
			if _, done := o.Workloads[s]; s == "" || done {
				continue
			}
			wl, err := r.workload(ctx, mr.Namespace, sc.DeploymentFor(s), o.ScaleValues)
			if err != nil {
				fail(err)
				return
			}
			o.Workloads[s] = wl
		}
	}
	if st == nil {
		return
	}
	for _, c := range st.Changes {
		t := rollout.ScaleTarget{Kind: c.Kind, Name: c.Name, Field: c.Field}
		if _, ok := o.ScaleValues[t]; ok {
			continue
		}
		if err := r.readTarget(ctx, mr.Namespace, t, o.ScaleValues); err != nil {
			fail(err)
			return
		}
	}
}

// workload finds a version's Deployment and the HPA that targets it, and
// records their scalable fields in values. A missing Deployment is a
// Workload.Problem; an error is a read that failed.
func (r *Reconciler) workload(ctx context.Context, ns, name string, values map[rollout.ScaleTarget]int32) (rollout.Workload, error) {
	wl := rollout.Workload{Deployment: name}
	if err := r.readTarget(ctx, ns, rollout.ScaleTarget{Kind: v1alpha1.KindDeployment, Name: name, Field: v1alpha1.FieldReplicas}, values); err != nil {
		return wl, err
	}
	if _, ok := values[rollout.ScaleTarget{Kind: v1alpha1.KindDeployment, Name: name, Field: v1alpha1.FieldReplicas}]; !ok {
		wl.Problem = fmt.Sprintf("Deployment %s/%s not found: create it, or make spec.scaling.deploymentName name each version's Deployment", ns, name)
		return wl, nil
	}
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	if err := r.client.List(ctx, &hpas, client.InNamespace(ns)); err != nil {
		return wl, fmt.Errorf("list HorizontalPodAutoscalers in %s: %w", ns, err)
	}
	// Kubernetes itself refuses to act when two HPAs target one
	// Deployment; the first by name is as good a choice as any then.
	sort.Slice(hpas.Items, func(i, j int) bool { return hpas.Items[i].Name < hpas.Items[j].Name })
	for i := range hpas.Items {
		h := &hpas.Items[i]
		ref := h.Spec.ScaleTargetRef
		if ref.Kind == "Deployment" && ref.Name == name && (ref.APIVersion == "" || strings.HasPrefix(ref.APIVersion, "apps/")) {
			wl.HPA = h.Name
			hpaValues(h, values)
			break
		}
	}
	return wl, nil
}

// readTarget records the current value of t's object in values; nothing
// when the object is gone.
func (r *Reconciler) readTarget(ctx context.Context, ns string, t rollout.ScaleTarget, values map[rollout.ScaleTarget]int32) error {
	obj, err := scalable(t.Kind)
	if err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: ns, Name: t.Name}
	if err := r.client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get %s %s: %w", t.Kind, key, err)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		n := int32(1) // the API server's default
		if o.Spec.Replicas != nil {
			n = *o.Spec.Replicas
		}
		values[rollout.ScaleTarget{Kind: t.Kind, Name: t.Name, Field: v1alpha1.FieldReplicas}] = n
	case *autoscalingv2.HorizontalPodAutoscaler:
		hpaValues(o, values)
	}
	return nil
}

// scalable is an empty object of a kind Fulcrum scales.
func scalable(kind string) (client.Object, error) {
	switch kind {
	case v1alpha1.KindDeployment:
		return &appsv1.Deployment{}, nil
	case v1alpha1.KindHPA:
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	}
	return nil, fmt.Errorf("unknown kind %q in status.scaling", kind)
}

func hpaValues(h *autoscalingv2.HorizontalPodAutoscaler, values map[rollout.ScaleTarget]int32) {
	min := int32(1) // the API server's default
	if h.Spec.MinReplicas != nil {
		min = *h.Spec.MinReplicas
	}
	values[rollout.ScaleTarget{Kind: v1alpha1.KindHPA, Name: h.Name, Field: v1alpha1.FieldMinReplicas}] = min
	values[rollout.ScaleTarget{Kind: v1alpha1.KindHPA, Name: h.Name, Field: v1alpha1.FieldMaxReplicas}] = h.Spec.MaxReplicas
}

// applyScale writes the decided scale actions, one merge patch per object
// (an HPA's minReplicas and maxReplicas change together, so the API server
// never sees min above max between two writes). A failed write is logged
// and recorded as a Warning event, and reported false: the state machine
// asks for it again on the next reconcile, which comes soon.
func (r *Reconciler) applyScale(ctx context.Context, mr *v1alpha1.ModelRollout, actions []rollout.ScaleAction) bool {
	type object struct{ kind, name string }
	fields := map[object]map[string]int32{}
	var order []object
	for _, a := range actions {
		k := object{a.Kind, a.Name}
		if fields[k] == nil {
			fields[k] = map[string]int32{}
			order = append(order, k)
		}
		fields[k][strings.TrimPrefix(a.Field, "spec.")] = a.To
	}
	ok := true
	for _, k := range order {
		if err := r.patchScale(ctx, mr.Namespace, k.kind, k.name, fields[k]); err != nil {
			ok = false
			msg := fmt.Sprintf("could not set %s %s/%s %v: %v; retrying", k.kind, mr.Namespace, k.name, fields[k], err)
			if apierrors.IsForbidden(err) {
				msg += ": " + rbacHint
			}
			ctrl.LoggerFrom(ctx).Error(err, "scale write failed; retrying", "kind", k.kind, "name", k.name)
			if r.recorder != nil {
				r.recorder.Eventf(mr, nil, rollout.EventTypeWarning, rollout.ReasonScaleFailed, "Scale", "%s", msg)
			}
		}
	}
	return ok
}

func (r *Reconciler) patchScale(ctx context.Context, ns, kind, name string, fields map[string]int32) error {
	body, err := json.Marshal(map[string]any{"spec": fields})
	if err != nil {
		return err
	}
	obj, err := scalable(kind)
	if err != nil {
		return err
	}
	obj.SetNamespace(ns)
	obj.SetName(name)
	err = r.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
	r.metrics.wrote("scale", err)
	return err
}

// restoreScaling puts back every field status.scaling recorded, when the
// rollout is deleted with onDelete RestoreStable. Objects that are gone
// are skipped; a write refused by RBAC is reported and does not hold the
// deletion; other errors are retried.
func (r *Reconciler) restoreScaling(ctx context.Context, mr *v1alpha1.ModelRollout) (string, error) {
	st := mr.Status.Scaling
	if st == nil {
		return "", nil
	}
	var notes []string
	for _, c := range st.Changes {
		err := r.patchScale(ctx, mr.Namespace, c.Kind, c.Name, map[string]int32{strings.TrimPrefix(c.Field, "spec."): c.Original})
		switch {
		case err == nil:
			notes = append(notes, fmt.Sprintf("%s %s %s put back to %d", c.Kind, c.Name, c.Field, c.Original))
		case apierrors.IsNotFound(err):
		case apierrors.IsForbidden(err) || apierrors.IsInvalid(err):
			notes = append(notes, fmt.Sprintf("%s %s %s left at %d (%v)", c.Kind, c.Name, c.Field, c.Set, err))
		default:
			return "", fmt.Errorf("put back %s %s/%s %s: %w", c.Kind, mr.Namespace, c.Name, c.Field, err)
		}
	}
	return strings.Join(notes, "; "), nil
}

// trimDeployment keeps what the controller reads of a Deployment: its
// replicas. The pod template, often the largest part, is dropped from the
// cache.
func trimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	slim := &appsv1.Deployment{}
	slim.ObjectMeta = *d.ObjectMeta.DeepCopy()
	slim.ManagedFields = nil
	slim.Annotations = nil
	slim.Spec.Replicas = d.Spec.Replicas
	slim.Status = d.Status
	return slim, nil
}
