package controller

import (
	"context"
	"fmt"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
)

// world is everything read for one reconcile.
type world struct {
	vs       *unstructured.Unstructured
	dr       *networkingv1.DestinationRule
	target   istio.Target
	observed rollout.Observed
}

// gather reads the rollout's objects. A missing or inconsistent reference is
// not an error: it becomes observed.Problem, which the state machine turns
// into phase Failed. Errors are for reads that failed.
func (r *Reconciler) gather(ctx context.Context, mr *v1alpha1.ModelRollout) (*world, error) {
	w := &world{}
	w.observed.Now = r.clock.Now()
	ns := mr.Namespace

	vs := r.newIstio("VirtualService")
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: mr.Spec.VirtualService.Name}, vs); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get VirtualService %s/%s: %w", ns, mr.Spec.VirtualService.Name, err)
		}
		w.observed.Problem = fmt.Sprintf("VirtualService %s/%s not found: create it with an HTTP route to the model's host (spec.virtualService.name)", ns, mr.Spec.VirtualService.Name)
		return w, nil
	}
	w.vs = vs

	dru := r.newIstio("DestinationRule")
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: mr.Spec.DestinationRule}, dru); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get DestinationRule %s/%s: %w", ns, mr.Spec.DestinationRule, err)
		}
		w.observed.Problem = fmt.Sprintf("DestinationRule %s/%s not found: create it with one subset per model version (spec.destinationRule)", ns, mr.Spec.DestinationRule)
		return w, nil
	}
	dr, err := istio.DecodeDestinationRule(dru)
	if err != nil {
		w.observed.Problem = err.Error()
		return w, nil
	}
	w.dr = dr
	w.target = istio.Target{Routes: mr.Spec.VirtualService.Routes, DestinationRule: dr, Domain: r.domain}
	w.observed.Subsets = map[string]bool{}
	for _, s := range dr.Spec.GetSubsets() {
		w.observed.Subsets[s.GetName()] = true
	}
	// Only a missing stable subset stops the rollout: a missing candidate
	// (or pinned) subset is the state machine's to handle, by holding its
	// weight at 0 or draining it to stable.
	if err := istio.CheckSubsets(dr, mr.Spec.Stable); err != nil {
		w.observed.Problem = err.Error()
		return w, nil
	}
	rw, err := istio.ReadWeights(vs, w.target)
	if err != nil {
		w.observed.Problem = err.Error()
		return w, nil
	}
	w.observed.RouteWeights = rw
	// A shadow stage under way needs the managed routes' mirror: a route
	// that mirrors elsewhere (someone else's mirror) stops the rollout
	// with a message rather than being overwritten.
	if sh := mr.Status.Shadow; sh != nil && (mr.Status.Phase == v1alpha1.PhaseProgressing || mr.Status.Phase == v1alpha1.PhasePaused) {
		if msg := istio.ForeignMirror(vs, w.target, sh.Subset); msg != "" {
			w.observed.Problem = msg
			return w, nil
		}
	}
	// Routes stay the user's: a route shadowed or re-steered is reported,
	// not undone (status.routeShapes is the baseline).
	// The shadow stage's own mirror is Fulcrum's doing, not a change of the
	// routes' shape by someone else.
	shaped := vs
	if sh := mr.Status.Shadow; sh != nil {
		if cleared, _, err := istio.ClearMirror(vs, w.target, sh.Subset); err == nil {
			shaped = cleared
		}
	}
	if shapes, err := istio.Shapes(shaped, w.target); err == nil {
		w.observed.RouteShapes = shapes
		w.observed.RouteChanges = istio.ShapeChanges(mr.Status.RouteShapes, shapes)
	}
	w.observed.Shadowed = istio.Shadowed(vs, w.target)
	if w.observed.Conflict, err = r.routeConflict(ctx, mr, vs, w.target); err != nil {
		return nil, err
	}

	sel, err := r.serviceSelector(ctx, mr, dr)
	if err != nil {
		return nil, err
	}
	w.observed.ReadyPods = map[string]int32{}
	for _, subset := range podSubsets(mr, rw) {
		sl, ok := istio.SubsetLabels(dr, subset)
		if !ok {
			continue
		}
		n, err := r.readyPods(ctx, ns, sel, sl)
		if err != nil {
			return nil, err
		}
		w.observed.ReadyPods[subset] = n
	}
	r.gatherTraffic(ctx, mr, w)
	r.gatherWarmth(ctx, mr, w)
	r.gatherRewards(ctx, mr, w)
	r.gatherScaling(ctx, mr, w)
	return w, nil
}

// gatherTraffic reads the model's request rate when the rollout limits
// weights by capacity (spec.readiness.requestsPerPod or
// requestsPerPodQuery), and measures one pod's capacity with the query. A
// rate or capacity that cannot be read is a TrafficProblem or
// CapacityProblem: the state machine then holds rising weights rather than
// guess (rollbacks never wait for it).
func (r *Reconciler) gatherTraffic(ctx context.Context, mr *v1alpha1.ModelRollout, w *world) {
	rd := mr.Spec.Readiness
	if rd.RequestsPerPod == nil && rd.RequestsPerPodQuery == "" {
		return
	}
	svc := r.service(mr, w.dr)
	if rd.RequestsPerPod == nil {
		r.gatherCapacity(ctx, mr, w, svc)
	}
	if r.traffic == nil {
		w.observed.TrafficProblem = "no Prometheus is configured (--prometheus-url), so the capacity check of spec.readiness.requestsPerPod cannot read the model's traffic"
		return
	}
	rate, err := r.traffic.TrafficRate(ctx, mr.Namespace, svc, w.observed.Now)
	if err != nil {
		w.observed.TrafficProblem = "the model's traffic cannot be read for the capacity check (spec.readiness.requestsPerPod): " + err.Error()
		return
	}
	w.observed.TrafficRate = &rate
}

// gatherCapacity measures one pod's capacity with
// spec.readiness.requestsPerPodQuery.
func (r *Reconciler) gatherCapacity(ctx context.Context, mr *v1alpha1.ModelRollout, w *world, svc string) {
	if r.capacity == nil {
		w.observed.CapacityProblem = "no Prometheus is configured (--prometheus-url), so spec.readiness.requestsPerPodQuery cannot measure one pod's capacity"
		return
	}
	per, err := r.capacity.PodCapacity(ctx, mr.Namespace, svc, mr.Spec.Readiness.RequestsPerPodQuery, w.observed.Now)
	if err != nil {
		w.observed.CapacityProblem = "one pod's capacity cannot be measured: " + err.Error()
		return
	}
	w.observed.RequestsPerPod = &per
}

// podSubsets are the subsets whose Ready pods matter this reconcile: those
// the rollout may send traffic to, and those carrying weight on a route now
// (a new rollout adopts them).
func podSubsets(mr *v1alpha1.ModelRollout, rw istio.RouteWeights) []string {
	out := rollout.DesiredSubsets(mr)
	seen := map[string]bool{}
	for _, s := range out {
		seen[s] = true
	}
	for _, route := range rw {
		for s, w := range route {
			if w > 0 && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// serviceSelector returns the selector of the model's Service (spec.service,
// or the short name of the DestinationRule's host), or nil when there is no
// such Service in the namespace: then the subset labels alone select pods.
func (r *Reconciler) serviceSelector(ctx context.Context, mr *v1alpha1.ModelRollout, dr *networkingv1.DestinationRule) (map[string]string, error) {
	name := r.service(mr, dr)
	if name == "" {
		return nil, nil
	}
	svc := &corev1.Service{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: mr.Namespace, Name: name}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Service %s/%s: %w", mr.Namespace, name, err)
	}
	return svc.Spec.Selector, nil
}

// service is the model's Service: spec.service, or the Service of the
// rollout's namespace that the DestinationRule's host names ("" when the
// host is outside it, or there is no DestinationRule).
func (r *Reconciler) service(mr *v1alpha1.ModelRollout, dr *networkingv1.DestinationRule) string {
	if mr.Spec.Service != "" || dr == nil {
		return mr.Spec.Service
	}
	return r.domain.Service(dr.Spec.GetHost(), dr.Namespace)
}

func (r *Reconciler) readyPods(ctx context.Context, ns string, svc, subset map[string]string) (int32, error) {
	want := labels.Set{}
	for k, v := range svc {
		want[k] = v
	}
	for k, v := range subset {
		want[k] = v
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(want)}); err != nil {
		return 0, fmt.Errorf("list pods in %s with %s: %w", ns, want, err)
	}
	var n int32
	for i := range pods.Items {
		if podReady(&pods.Items[i]) {
			n++
		}
	}
	return n, nil
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
