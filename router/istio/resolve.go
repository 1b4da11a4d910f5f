package istio

import (
	"fmt"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
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

// Counterpart finds a managed route of one version of a VirtualService on
// another: the route of the same name, or the only route when r is the
// only, unnamed one. The webhook's guard compares the two.
func Counterpart(vs *unstructured.Unstructured, r ManagedRoute) (ManagedRoute, bool) {
	var names []string
	if r.Name != "" {
		names = []string{r.Name}
	}
	rs, err := ResolveRoutes(vs, names)
	if err != nil || len(rs) != 1 {
		return ManagedRoute{}, false
	}
	return rs[0], true
}

// DestinationWeights reads the route r of vs: the weight of each
// destination, keyed "host/subset[:port]" so that a destination moved to
// another host or port counts as a change; and the weights by subset in
// the route's order, for messages. A lone destination without a weight
// gets 100 and others 0, as Istio reads them.
func DestinationWeights(vs *unstructured.Unstructured, r ManagedRoute) (map[string]int32, []v1alpha1.SubsetWeight) {
	items, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if r.Index < 0 || r.Index >= len(items) {
		return nil, nil
	}
	route, _ := items[r.Index].(map[string]any)
	dests, _ := route["route"].([]any)
	byKey := make(map[string]int32, len(dests))
	var bySubset []v1alpha1.SubsetWeight
	for _, it := range dests {
		m, _ := it.(map[string]any)
		d, _ := m["destination"].(map[string]any)
		host, _ := d["host"].(string)
		subset, _ := d["subset"].(string)
		w, has := m["weight"]
		weight := int32(router.JSONInt(w))
		if !has && len(dests) == 1 {
			weight = 100
		}
		key := host + "/" + subset
		if p, ok := d["port"].(map[string]any); ok {
			if n := router.JSONInt(p["number"]); n != 0 {
				key += ":" + strconv.FormatInt(n, 10)
			}
		}
		byKey[key] += weight
		bySubset = append(bySubset, v1alpha1.SubsetWeight{Subset: subset, Weight: weight})
	}
	return byKey, bySubset
}
