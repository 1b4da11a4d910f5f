package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/controller/rollout"
	"github.com/fulcrum-ml/fulcrum/router"
)

// world is everything read for one reconcile.
type world struct {
	// route is the router of the rollout's route object, and st what it
	// read.
	route    router.Router
	st       *router.State
	observed rollout.Observed
}

// gather reads the rollout's objects. A missing or inconsistent reference is
// not an error: it becomes observed.Problem, which the state machine turns
// into phase Failed. Errors are for reads that failed.
func (r *Reconciler) gather(ctx context.Context, mr *v1alpha1.ModelRollout) (*world, error) {
	w := &world{}
	w.observed.Now = r.clock.Now()
	ns := mr.Namespace
	rt, err := r.routers.For(mr)
	if err != nil {
		w.observed.Problem = err.Error()
		return w, nil
	}
	st, err := rt.Read(ctx, mr)
	if err != nil {
		return nil, err
	}
	w.route, w.st = rt, st
	if st.Versions != nil {
		w.observed.Subsets = map[string]bool{}
		for name := range st.Versions {
			w.observed.Subsets[name] = true
		}
	}
	if st.Problem != "" {
		w.observed.Problem = st.Problem
		return w, nil
	}
	w.observed.RouteWeights = st.Weights
	// Routes stay the user's: a route shadowed or re-steered is reported,
	// not undone (status.routeShapes is the baseline).
	w.observed.RouteShapes, w.observed.RouteChanges, w.observed.Shadowed = st.Shapes, st.Changes, st.Shadowed
	if w.observed.Conflict, err = r.routeConflict(ctx, mr, rt, st.Object); err != nil {
		return nil, err
	}
	w.observed.ReadyPods = map[string]int32{}
	for _, subset := range podSubsets(mr, st.Weights) {
		v, ok := st.Versions[subset]
		if !ok {
			continue
		}
		n, err := r.readyPods(ctx, ns, v.Selector)
		if err != nil {
			return nil, err
		}
		w.observed.ReadyPods[subset] = n
	}
	r.gatherTraffic(ctx, mr, w)
	r.gatherWarmth(ctx, mr, w)
	r.gatherRewards(ctx, mr, w)
	r.gatherScaling(ctx, mr, w)
	if err := r.gatherGates(ctx, mr, w); err != nil {
		return nil, err
	}
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
	svc := w.service(mr)
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
func podSubsets(mr *v1alpha1.ModelRollout, rw router.RouteWeights) []string {
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

// service is the model's Service as metrics name it: spec.service, or
// what the router found ("" before anything was read).
func (w *world) service(mr *v1alpha1.ModelRollout) string {
	if w.st == nil || w.st.Service == "" {
		return mr.Spec.Service
	}
	return w.st.Service
}

// readyPods counts the Ready pods a version's selector picks.
func (r *Reconciler) readyPods(ctx context.Context, ns string, selector map[string]string) (int32, error) {
	want := labels.Set(selector)
	if len(want) == 0 {
		return 0, nil // selects nothing rather than every pod
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
