package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/gates"
	"github.com/fulcrum-ml/fulcrum/router/gatewayapi"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// Field indexes on ModelRollouts, used to map watched objects back to them.
const (
	// IndexRouteObject is "Kind/name" of the rollout's route object.
	IndexRouteObject     = "spec.routeObject"
	IndexDestinationRule = "spec.destinationRule"
	// IndexRouteKind is the kind of the rollout's route object.
	IndexRouteKind = "spec.routeKind"
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
// serves for VirtualServices (istio.DetectVersion).
func DetectIstioVersion(mapper meta.RESTMapper) (string, error) {
	return istio.DetectVersion(mapper)
}

// DetectGatewayKinds returns the Gateway API route kinds the API server
// serves at gateway.networking.k8s.io/v1, for Config.GatewayKinds.
func DetectGatewayKinds(mapper meta.RESTMapper) ([]string, error) {
	var out []string
	for _, kind := range []string{v1alpha1.RouteKindHTTPRoute, v1alpha1.RouteKindGRPCRoute} {
		ok, err := gatewayapi.Served(mapper, kind)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, kind)
		}
	}
	return out, nil
}

// CacheByObject trims what the shared cache keeps: the controller only needs
// the labels, deletion timestamp and Ready condition of pods, and pods are
// by far the most numerous objects it watches.
func CacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}:        {Transform: trimPod},
		&appsv1.Deployment{}: {Transform: trimDeployment},
		// Only the Jobs of gates: not every Job of the cluster.
		&batchv1.Job{}: {Label: gateJobs},
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

// gateJobs selects the Jobs of spec.gates.
var gateJobs = func() labels.Selector {
	req, err := labels.NewRequirement(gates.LabelGate, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}()

// SetupWithManager registers the field indexes and the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1alpha1.ModelRollout{}, IndexRouteObject, IndexRouteObjectOf); err != nil {
		return fmt.Errorf("index ModelRollouts by route object: %w", err)
	}
	if err := idx.IndexField(ctx, &v1alpha1.ModelRollout{}, IndexRouteKind, func(o client.Object) []string {
		return []string{o.(*v1alpha1.ModelRollout).Spec.RouteRef().Kind}
	}); err != nil {
		return fmt.Errorf("index ModelRollouts by route kind: %w", err)
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
	// Likewise only the leader calls gates.
	if err := mgr.Add(r.gates); err != nil {
		return fmt.Errorf("add the gate runner: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.ModelRollout{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionStarted()))).
		// A deleted rollout frees its routes: a later rollout on them that
		// waited in RouteConflict takes over without waiting for a requeue.
		Watches(&v1alpha1.ModelRollout{}, handler.EnqueueRequestsFromMapFunc(r.peersOnVirtualService), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false },
			UpdateFunc: func(event.UpdateEvent) bool { return false },
			DeleteFunc: func(event.DeleteEvent) bool { return true },
		})).
		Watches(r.istio.New("VirtualService"), handler.EnqueueRequestsFromMapFunc(r.byRouteObject(v1alpha1.RouteKindVirtualService))).
		Watches(r.istio.New("DestinationRule"), handler.EnqueueRequestsFromMapFunc(r.byIndex(IndexDestinationRule))).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.podToRollouts), builder.WithPredicates(podReadinessChanged())).
		// A gate's Job finishing wakes its rollout (spec.gates[].job).
		Owns(&batchv1.Job{})
	for _, g := range r.gateway {
		b = b.Watches(g.New(), handler.EnqueueRequestsFromMapFunc(r.byRouteObject(g.Kind().Kind)))
	}
	if r.notifier != nil {
		b = b.WatchesRawSource(source.Channel(r.notifyEvents, &handler.EnqueueRequestForObject{}))
	}
	if len(r.gateway) > 0 {
		// A version Service's selector says which pods are the version's.
		b = b.Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.gatewayRollouts))
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles, SkipNameValidation: &opts.SkipNameValidation}).
		Complete(r)
}

// IndexRouteObjectOf is the IndexRouteObject index function.
func IndexRouteObjectOf(o client.Object) []string {
	return []string{routeObjectKey(o.(*v1alpha1.ModelRollout).Spec.RouteRef())}
}

func routeObjectKey(ref v1alpha1.RouteRef) string { return ref.Kind + "/" + ref.Name }

// byRouteObject maps a route object of kind to the rollouts that name it.
func (r *Reconciler) byRouteObject(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.ModelRolloutList
		key := routeObjectKey(v1alpha1.RouteRef{Kind: kind, Name: o.GetName()})
		if err := r.client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexRouteObject: key}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "map to ModelRollouts", "object", key)
			return nil
		}
		return requests(list.Items)
	}
}

// gatewayRollouts maps a pod or a Service to every rollout of its
// namespace routed by Gateway API: their versions are Services, found by
// name when the rollout is read, and a namespace has few rollouts.
func (r *Reconciler) gatewayRollouts(ctx context.Context, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, g := range r.gateway {
		var list v1alpha1.ModelRolloutList
		if err := r.client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexRouteKind: g.Kind().Kind}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "map to ModelRollouts on Gateway API routes", "object", o.GetNamespace()+"/"+o.GetName())
			return nil
		}
		out = append(out, requests(list.Items)...)
	}
	return out
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
	if err := r.client.List(ctx, &list, client.InNamespace(mr.Namespace), client.MatchingFields{IndexRouteObject: routeObjectKey(mr.Spec.RouteRef())}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "map to ModelRollouts on the same route object", "modelrollout", mr.Namespace+"/"+mr.Name)
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
	drs.SetGroupVersionKind(r.istio.New("DestinationRuleList").GroupVersionKind())
	if err := r.client.List(ctx, drs, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list DestinationRules for pod", "pod", o.GetNamespace()+"/"+o.GetName())
		return nil
	}
	out := r.gatewayRollouts(ctx, o)
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
