package istio

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ManagedRoute is one HTTP route of a VirtualService that a rollout
// manages, as resolved on the object.
type ManagedRoute struct {
	// Key is the route's name, or "http[0]" for the only, unnamed route.
	Key string
	// Name is the route's name ("" when unnamed).
	Name string
	// Index of the route in spec.http.
	Index int
}

// RouteError says why the named routes do not resolve.
type RouteError struct {
	// UserRoutes is how many HTTP routes the VirtualService has besides
	// Fulcrum's own, when the rollout names none (0 or several).
	UserRoutes int
	// Missing are the indexes in the rollout's list of routes that the
	// VirtualService has no route of that name for.
	Missing []int
	// Routes are the user's routes, for messages: names quoted, unnamed
	// ones as "unnamed http[INDEX]" (named ones only for Missing).
	Routes []string
	// Message is the whole explanation, with the fix.
	Message string
}

func (e *RouteError) Error() string { return e.Message }

// ResolveRoutes resolves the routes a rollout names (empty: the
// VirtualService's only HTTP route, Fulcrum's own routes aside) to the
// routes of vs. It is the one place a managed route is looked up: the
// controller, the admin API and the webhook all resolve through it. The
// error is a *RouteError.
func ResolveRoutes(vs *unstructured.Unstructured, names []string) ([]ManagedRoute, error) {
	rs, err := managedRoutes(vs, Target{Routes: names})
	if err != nil {
		return nil, err
	}
	out := make([]ManagedRoute, len(rs))
	for i, r := range rs {
		out[i] = ManagedRoute{Key: r.key, Name: r.name, Index: r.index}
	}
	return out, nil
}

// routeNames lists the user's routes for a message: names quoted, unnamed
// ones by their index.
func routeNames(all []route, namedOnly bool) []string {
	var names []string
	for _, r := range all {
		switch {
		case r.name != "":
			names = append(names, fmt.Sprintf("%q", r.name))
		case !namedOnly:
			names = append(names, fmt.Sprintf("unnamed http[%d]", r.index))
		}
	}
	return slices.Clip(names)
}
