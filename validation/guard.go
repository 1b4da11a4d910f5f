package validation

import (
	"maps"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

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
// edits, including those to unmanaged routes, return nothing. Routes are
// resolved and read by the router (istio.ResolveRoutes, Counterpart and
// DestinationWeights), as the controller reads them.
func ManagedRouteChanges(old, vs *istiov1.VirtualService, rollouts []v1alpha1.ModelRollout) []RouteChange {
	oldU, err1 := toUnstructured(old)
	vsU, err2 := toUnstructured(vs)
	if err1 != nil || err2 != nil {
		return nil
	}
	var out []RouteChange
	for i := range rollouts {
		mr := &rollouts[i]
		if !manages(mr, old.Namespace, old.Name) {
			continue
		}
		// The rollout manages the routes as they resolve on the old object.
		routes, err := istio.ResolveRoutes(oldU, mr.Spec.VirtualService.Routes)
		if err != nil {
			continue
		}
		for _, r := range routes {
			mrRoute := ManagedRoute{Name: r.Name, Index: r.Index, key: r.Key}
			before, beforeW := istio.DestinationWeights(oldU, r)
			now, ok := istio.Counterpart(vsU, r)
			if !ok {
				out = append(out, RouteChange{Rollout: mr, Route: mrRoute, Old: beforeW, Removed: true})
				continue
			}
			after, afterW := istio.DestinationWeights(vsU, now)
			if !maps.Equal(before, after) {
				out = append(out, RouteChange{Rollout: mr, Route: mrRoute, Old: beforeW, New: afterW})
			}
		}
	}
	return out
}

// toUnstructured is a typed VirtualService as the router reads it.
func toUnstructured(vs *istiov1.VirtualService) (*unstructured.Unstructured, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vs)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetNamespace(vs.Namespace)
	u.SetName(vs.Name)
	return u, nil
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

// managedRoute names a route key of istio.Shapes as a ManagedRoute, as
// the router resolves it on vs.
func managedRoute(vs *unstructured.Unstructured, t istio.Target, key string) ManagedRoute {
	routes, _ := istio.ResolveRoutes(vs, t.Routes)
	for _, r := range routes {
		if r.Key == key {
			return ManagedRoute{Name: r.Name, Index: r.Index, key: r.Key}
		}
	}
	return ManagedRoute{Name: key}
}
