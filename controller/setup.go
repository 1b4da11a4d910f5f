package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// Field indexes on ModelRollouts, used to map watched objects back to them.
const (
	IndexVirtualService  = "spec.virtualService.name"
	IndexDestinationRule = "spec.destinationRule"
)

// ControllerName names the controller in logs, metrics and Events.
const ControllerName = "fulcrum"

// Options tune the controller.
type Options struct {
	// MaxConcurrentReconciles is how many rollouts are reconciled at once.
	MaxConcurrentReconciles int
	// SkipNameValidation allows several managers with this controller in
	// one process (tests); a binary has one.
	SkipNameValidation bool
}

// DetectIstioVersion returns the networking.istio.io version the API server
// serves for VirtualServices, preferring v1, then v1beta1, then v1alpha3.
// Istio serves all three from one schema; v1 needs Istio 1.22 or later.
func DetectIstioVersion(mapper meta.RESTMapper) (string, error) {
	for _, v := range []string{"v1", "v1beta1", "v1alpha3"} {
		_, err := mapper.RESTMapping(schema.GroupKind{Group: "networking.istio.io", Kind: "VirtualService"}, v)
		if err == nil {
			return v, nil
		}
		if !meta.IsNoMatchError(err) {
			return "", fmt.Errorf("discover networking.istio.io versions: %w", err)
		}
	}
	return "", fmt.Errorf("the API server serves no networking.istio.io VirtualService: install Istio's CRDs")
}

// CacheByObject trims what the shared cache keeps: the controller only needs
// the labels, deletion timestamp and Ready condition of pods, and pods are
// by far the most numerous objects it watches.
func CacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}:        {Transform: trimPod},
		&appsv1.Deployment{}: {Transform: trimDeployment},
	}
}

func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{}
	slim.Name, slim.Namespace, slim.UID = p.Name, p.Namespace, p.UID
	slim.ResourceVersion, slim.Labels, slim.DeletionTimestamp = p.ResourceVersion, p.Labels, p.DeletionTimestamp
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			slim.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return slim, nil
}

// SetupWithManager registers the field indexes and the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1alpha1.ModelRollout{}, IndexVirtualService, indexVirtualService); err != nil {
		return fmt.Errorf("index ModelRollouts by VirtualService: %w", err)
	}
	if err := idx.IndexField(ctx, &v1alpha1.ModelRollout{}, IndexDestinationRule, func(o client.Object) []string {
		return []string{o.(*v1alpha1.ModelRollout).Spec.DestinationRule}
	}); err != nil {
		return fmt.Errorf("index ModelRollouts by DestinationRule: %w", err)
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 4
	}
	if r.warmup != nil {
		// Only the leader sends warm-up requests, as only it decides.
		if err := mgr.Add(r.warmup); err != nil {
			return fmt.Errorf("add the warm-up sender: %w", err)
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.ModelRollout{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionStarted()))).
		// A deleted rollout frees its routes: a later rollout on them that
		// waited in RouteConflict takes over without waiting for a requeue.
		Watches(&v1alpha1.ModelRollout{}, handler.EnqueueRequestsFromMapFunc(r.peersOnVirtualService), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false },
			UpdateFunc: func(event.UpdateEvent) bool { return false },
			DeleteFunc: func(event.DeleteEvent) bool { return true },
		})).
		Watches(r.newIstio("VirtualService"), handler.EnqueueRequestsFromMapFunc(r.byIndex(IndexVirtualService))).
		Watches(r.newIstio("DestinationRule"), handler.EnqueueRequestsFromMapFunc(r.byIndex(IndexDestinationRule))).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.podToRollouts), builder.WithPredicates(podReadinessChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles, SkipNameValidation: &opts.SkipNameValidation}).
		Complete(r)
}

func indexVirtualService(o client.Object) []string {
	return []string{o.(*v1alpha1.ModelRollout).Spec.VirtualService.Name}
}

// deletionStarted passes the update that sets deletionTimestamp, so the
// finalizer runs at once whatever the generation did.
func deletionStarted() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil
	}}
}

// peersOnVirtualService maps a ModelRollout to the other rollouts of its
// VirtualService.
func (r *Reconciler) peersOnVirtualService(ctx context.Context, o client.Object) []reconcile.Request {
	mr, ok := o.(*v1alpha1.ModelRollout)
	if !ok {
		return nil
	}
	var list v1alpha1.ModelRolloutList
	if err := r.client.List(ctx, &list, client.InNamespace(mr.Namespace), client.MatchingFields{IndexVirtualService: mr.Spec.VirtualService.Name}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "map to ModelRollouts on the same VirtualService", "modelrollout", mr.Namespace+"/"+mr.Name)
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if p := &list.Items[i]; p.UID != mr.UID {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
		}
	}
	return out
}

func (r *Reconciler) byIndex(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.ModelRolloutList
		if err := r.client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "map to ModelRollouts", "index", index, "object", o.GetNamespace()+"/"+o.GetName())
			return nil
		}
		return requests(list.Items)
	}
}

// podToRollouts maps a pod to the rollouts whose DestinationRule has a subset
// selecting it.
func (r *Reconciler) podToRollouts(ctx context.Context, o client.Object) []reconcile.Request {
	drs := &unstructured.UnstructuredList{}
	drs.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: r.version, Kind: "DestinationRuleList"})
	if err := r.client.List(ctx, drs, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list DestinationRules for pod", "pod", o.GetNamespace()+"/"+o.GetName())
		return nil
	}
	var out []reconcile.Request
	podLabels := labels.Set(o.GetLabels())
	for i := range drs.Items {
		dr, err := istio.DecodeDestinationRule(&drs.Items[i])
		if err != nil {
			continue
		}
		for _, s := range dr.Spec.GetSubsets() {
			if len(s.GetLabels()) > 0 && labels.SelectorFromSet(s.GetLabels()).Matches(podLabels) {
				out = append(out, r.byIndex(IndexDestinationRule)(ctx, &drs.Items[i])...)
				break
			}
		}
	}
	return out
}

func requests(items []v1alpha1.ModelRollout) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(items))
	for i := range items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&items[i])})
	}
	return out
}

// podReadinessChanged passes pod creations, deletions and updates that change
// readiness, labels or the deletion timestamp: nothing else matters here.
func podReadinessChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			a, ok1 := e.ObjectOld.(*corev1.Pod)
			b, ok2 := e.ObjectNew.(*corev1.Pod)
			if !ok1 || !ok2 {
				return true
			}
			return podReady(a) != podReady(b) || !labels.Equals(a.Labels, b.Labels) ||
				(a.DeletionTimestamp == nil) != (b.DeletionTimestamp == nil)
		},
	}
}
