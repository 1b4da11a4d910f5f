package validation

import (
	"maps"

	networking "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
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
		if !manages(mr, old.Namespace, old.Name) {
			continue
		}
		// The rollout manages the routes as they resolve on the old object.
		routes, _ := ManagedRoutes(old, *mr.Spec.VirtualService, field.NewPath("spec", "virtualService"))
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

// manages reports whether a rollout manages routes of the VirtualService
// namespace/name.
func manages(mr *v1alpha1.ModelRollout, namespace, name string) bool {
	return mr.Namespace == namespace && mr.Spec.VirtualService != nil && mr.Spec.VirtualService.Name == name && ManagesRoutes(mr)
}

// SteeringChange is an edit of a VirtualService that changes who gets the
// traffic of a route a ModelRollout manages, or what they get back, other
// than through its weights: a steering field (istio.SteeringFields) added,
// changed or removed, or a route in front of it that now catches all of its
// traffic.
type SteeringChange struct {
	// Rollout that manages the route.
	Rollout *v1alpha1.ModelRollout
	// Route as it resolves on the edited object.
	Route ManagedRoute
	// Fields the edit added, changed or removed, except those in Released.
	Fields []istio.ShapeChange
	// Released are removals that only send the route's traffic back to its
	// destinations (see Releases); the guard admits them.
	Released []istio.ShapeChange
	// Shadow is set when a route in front catches all of the route's
	// traffic after the edit and none did before.
	Shadow *istio.Shadow
}

// Blocks reports whether the guard stops the change: a steering field
// added, changed or removed other than a release, or a new shadow.
func (c SteeringChange) Blocks() bool {
	return len(c.Fields) > 0 || c.Shadow != nil
}

// ManagedRouteSteering compares two versions of a VirtualService and
// returns, for each route that a managing rollout (see ManagesRoutes) of the
// list owns, the changes to its steering fields and a new shadow. The routes
// resolve on both objects as the router resolves them (istio.Shapes). A
// route that was already shadowed, or a field that did not change, is not
// reported, so a VirtualService that was already in that state stays
// editable. A rollout whose routes do not resolve on the old or the edited
// object is skipped: ManagedRouteChanges reports a removed route, and the
// rollout's own validation a broken reference.
func ManagedRouteSteering(old, vs *unstructured.Unstructured, rollouts []v1alpha1.ModelRollout) []SteeringChange {
	var out []SteeringChange
	for i := range rollouts {
		mr := &rollouts[i]
		if !manages(mr, old.GetNamespace(), old.GetName()) {
			continue
		}
		t := istio.Target{Routes: mr.Spec.VirtualService.Routes}
		before, err := istio.Shapes(old, t)
		if err != nil {
			continue
		}
		after, err := istio.Shapes(vs, t)
		if err != nil {
			continue
		}
		wasShadowed := map[string]bool{}
		oldShadows, _ := istio.Shadows(old, t)
		for _, s := range oldShadows {
			wasShadowed[s.Route] = true
		}
		newShadows, _ := istio.Shadows(vs, t)
		for _, now := range after {
			c := SteeringChange{Rollout: mr, Route: managedRoute(vs, t, now.Route)}
			for _, f := range istio.DiffShapes(before, []v1alpha1.RouteShape{now}) {
				if Releases(f, now) {
					c.Released = append(c.Released, f)
				} else {
					c.Fields = append(c.Fields, f)
				}
			}
			for _, s := range newShadows {
				if s.Route == now.Route && !wasShadowed[s.Route] {
					c.Shadow = &s
				}
			}
			if c.Blocks() || len(c.Released) > 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

// Releases reports whether a change only sends a route's traffic back to
// its destinations: the removal of any steering field but the match (which
// widens the route to every request) and a mirror percentage while the
// mirror stays (which mirrors every request). now is the route's shape after
// the change. At 3 a.m. nobody should need to delete a rollout to take an
// injected fault off its route.
func Releases(c istio.ShapeChange, now v1alpha1.RouteShape) bool {
	if c.Change != istio.FieldRemoved {
		return false
	}
	switch c.Field {
	case "match":
		return false
	case "mirrorPercentage", "mirror_percent", "mirrorPercent":
		_, mirrors := now.Fields["mirror"]
		return !mirrors
	}
	return true
}

// managedRoute names a route key of istio.Shapes as a ManagedRoute: the
// only route when the rollout names none, else the first route of that name.
func managedRoute(vs *unstructured.Unstructured, t istio.Target, key string) ManagedRoute {
	items, _, _ := unstructured.NestedFieldNoCopy(vs.Object, "spec", "http")
	http, _ := items.([]any)
	for i, it := range http {
		r, _ := it.(map[string]any)
		name, _ := r["name"].(string)
		if len(t.Routes) == 0 {
			return ManagedRoute{Name: name, Index: 0}
		}
		if name == key {
			return ManagedRoute{Name: key, Index: i}
		}
	}
	return ManagedRoute{Name: key}
}
