package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// routeConflict returns, when an older ModelRollout of the namespace manages
// one of mr's routes, a message saying which and what to do; "" otherwise.
// One route has one rollout: the older one keeps it (creation time, then
// name), and the later one writes nothing. The webhook refuses such a
// rollout at creation, but it can be down, skipped, or raced by two creates.
func (r *Reconciler) routeConflict(ctx context.Context, mr *v1alpha1.ModelRollout, rt router.Router, obj *unstructured.Unstructured) (string, error) {
	ref := mr.Spec.RouteRef()
	var peers v1alpha1.ModelRolloutList
	if err := r.client.List(ctx, &peers, client.InNamespace(mr.Namespace), client.MatchingFields{IndexRouteObject: routeObjectKey(ref)}); err != nil {
		return "", fmt.Errorf("list ModelRollouts on %s %s/%s: %w", ref.Kind, mr.Namespace, ref.Name, err)
	}
	mine := routeKeys(rt, obj, ref.Routes)
	for i := range peers.Items {
		p := &peers.Items[i]
		if p.UID == mr.UID || !olderThan(p, mr) {
			continue
		}
		for _, k := range routeKeys(rt, obj, p.Spec.RouteRef().Routes) {
			if slices.Contains(mine, k) {
				return fmt.Sprintf("route %s of %s %s/%s is already managed by ModelRollout %s/%s, created earlier: one route has one rollout, so this one writes nothing; delete one of them, or name another route in %s",
					k, ref.Kind, mr.Namespace, ref.Name, p.Namespace, p.Name, ref.RoutesField()), nil
			}
		}
	}
	return "", nil
}

// routeKeys resolves routes (empty: the object's only one) to the keys the
// router gives them. Names that do not resolve are returned as they are, so
// that two rollouts naming one missing route still collide.
func routeKeys(rt router.Router, obj *unstructured.Unstructured, routes []string) []string {
	if len(routes) > 0 {
		return slices.Clone(routes)
	}
	rw, err := rt.Weights(obj, nil)
	if err != nil {
		return nil
	}
	return slices.Sorted(maps.Keys(rw))
}

func olderThan(a, b *v1alpha1.ModelRollout) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.Name < b.Name
}
