package validation

import (
	"maps"

	networking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// RouteChange is an edit of a VirtualService that touches the weights of a
// route a ModelRollout manages.
type RouteChange struct {
	// Rollout that manages the route.
	Rollout *v1alpha1.ModelRollout
	// Route as it was before the edit.
	Route ManagedRoute
	// Old and New weights by subset; New is nil when Removed.
	Old, New []v1alpha1.SubsetWeight
	// Removed is true when the edit removes or renames the route, or makes
	// the rollout's single unnamed route ambiguous.
	Removed bool
}

// ManagedRouteChanges compares two versions of a VirtualService and returns
// the changes to the weights (destinations and their weights) of every
// route that a managing rollout (see ManagesRoutes) of the list owns. Other
// edits, including those to unmanaged routes, return nothing.
func ManagedRouteChanges(old, vs *istiov1.VirtualService, rollouts []v1alpha1.ModelRollout) []RouteChange {
	var out []RouteChange
	for i := range rollouts {
		mr := &rollouts[i]
		if mr.Namespace != old.Namespace || mr.Spec.VirtualService.Name != old.Name || !ManagesRoutes(mr) {
			continue
		}
		// The rollout manages the routes as they resolve on the old object.
		routes, _ := ManagedRoutes(old, mr.Spec.VirtualService, field.NewPath("spec", "virtualService"))
		for _, r := range routes {
			before := old.Spec.GetHttp()[r.Index]
			after := counterpart(vs.Spec.GetHttp(), r)
			if after == nil {
				out = append(out, RouteChange{Rollout: mr, Route: r, Old: SubsetWeights(before), Removed: true})
				continue
			}
			if !maps.Equal(RouteWeights(before), RouteWeights(after)) {
				out = append(out, RouteChange{Rollout: mr, Route: r, Old: SubsetWeights(before), New: SubsetWeights(after)})
			}
		}
	}
	return out
}

// counterpart finds a managed route in the edited list: by name, or the
// only route when the managed route is the single unnamed one.
func counterpart(http []*networking.HTTPRoute, r ManagedRoute) *networking.HTTPRoute {
	if r.Name == "" {
		if len(http) == 1 {
			return http[0]
		}
		return nil
	}
	for _, h := range http {
		if h.GetName() == r.Name {
			return h
		}
	}
	return nil
}
