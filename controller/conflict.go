package controller

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// routeConflict returns, when an older ModelRollout of the namespace manages
// one of mr's routes, a message saying which and what to do; "" otherwise.
// One route has one rollout: the older one keeps it (creation time, then
// name), and the later one writes nothing. The webhook refuses such a
// rollout at creation, but it can be down, skipped, or raced by two creates.
func (r *Reconciler) routeConflict(ctx context.Context, mr *v1alpha1.ModelRollout, vs *unstructured.Unstructured, t istio.Target) (string, error) {
	var peers v1alpha1.ModelRolloutList
	if err := r.client.List(ctx, &peers, client.InNamespace(mr.Namespace), client.MatchingFields{IndexVirtualService: mr.Spec.VirtualService.Name}); err != nil {
		return "", fmt.Errorf("list ModelRollouts on VirtualService %s/%s: %w", mr.Namespace, mr.Spec.VirtualService.Name, err)
	}
	mine := istio.RouteKeys(vs, t.Routes)
	for i := range peers.Items {
		p := &peers.Items[i]
		if p.UID == mr.UID || !olderThan(p, mr) {
			continue
		}
		for _, k := range istio.RouteKeys(vs, p.Spec.VirtualService.Routes) {
			if slices.Contains(mine, k) {
				return fmt.Sprintf("route %s of VirtualService %s/%s is already managed by ModelRollout %s/%s, created earlier: one route has one rollout, so this one writes nothing; delete one of them, or name another route in spec.virtualService.routes",
					k, mr.Namespace, mr.Spec.VirtualService.Name, p.Namespace, p.Name), nil
			}
		}
	}
	return "", nil
}

func olderThan(a, b *v1alpha1.ModelRollout) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.Name < b.Name
}
