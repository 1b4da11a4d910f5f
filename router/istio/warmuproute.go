package istio

import (
	"github.com/fulcrum-ml/fulcrum/router"

	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Fulcrum writes a few HTTP routes of its own, just in front of the first
// managed route: the warm-up gate's (WarmupRoutePrefix) and an experiment's
// sticky arms (ExperimentRoutePrefix). Routes so named are never the
// user's: they do not count for the "only HTTP route" rule, route keys or
// the guard's checks, and Fulcrum removes them when it is done.
const (
	WarmupRoutePrefix     = "fulcrum-warmup-"
	ExperimentRoutePrefix = "fulcrum-exp-"
)

// WarmupRouteName is the warm-up route of a ModelRollout.
func WarmupRouteName(rollout string) string { return WarmupRoutePrefix + rollout }

// IsWarmupRoute reports whether an HTTP route name is a warm-up route's.
func IsWarmupRoute(name string) bool { return strings.HasPrefix(name, WarmupRoutePrefix) }

// IsOwnedRoute reports whether an HTTP route is one Fulcrum writes itself.
func IsOwnedRoute(name string) bool {
	return strings.HasPrefix(name, WarmupRoutePrefix) || strings.HasPrefix(name, ExperimentRoutePrefix)
}

// WarmupRoute is the route the warm-up gate needs: requests carrying Header
// with value Subset go to that subset of the model.
type WarmupRoute = router.WarmupRoute

// SetWarmupRoute returns a copy of vs with the warm-up route in front of the
// first managed route, and whether anything changed. The route matches only
// requests whose header w.Header is exactly w.Subset and sends them to that
// subset of the model's host (with the managed route's port); a route of
// that name elsewhere is moved and rewritten. vs is never modified.
func SetWarmupRoute(vs *unstructured.Unstructured, t Target, w WarmupRoute) (*unstructured.Unstructured, bool, error) {
	if !IsWarmupRoute(w.Name) || w.Header == "" || w.Subset == "" {
		return nil, false, fmt.Errorf("warm-up route %q for header %q and subset %q: want a %s name, a header and a subset", w.Name, w.Header, w.Subset, WarmupRoutePrefix)
	}
	if err := CheckSubsets(t.DestinationRule, w.Subset); err != nil {
		return nil, false, err
	}
	out, _, err := ClearWarmupRoute(vs, w.Name)
	if err != nil {
		return nil, false, err
	}
	routes, err := managedRoutes(out, t)
	if err != nil {
		return nil, false, err
	}
	dests, err := modelDestinations(out, routes[0], t)
	if err != nil {
		return nil, false, err
	}
	dest := destinationLike(dests[0], w.Subset)
	wr := map[string]any{
		"name":  w.Name,
		"match": []any{map[string]any{"headers": map[string]any{w.Header: map[string]any{"exact": w.Subset}}}},
		"route": []any{map[string]any{"destination": dest}},
	}
	insertBefore(out, routes[0], wr)
	return out, !equality.Semantic.DeepEqual(vs.Object, out.Object), nil
}

// ClearWarmupRoute returns a copy of vs without the HTTP route named name
// (a warm-up route), and whether it had one. vs is never modified.
func ClearWarmupRoute(vs *unstructured.Unstructured, name string) (*unstructured.Unstructured, bool, error) {
	if !IsWarmupRoute(name) {
		return vs.DeepCopy(), false, nil
	}
	return removeRoutes(vs, func(n string) bool { return n == name })
}

// insertBefore puts routes into spec.http just in front of the route at.
func insertBefore(vs *unstructured.Unstructured, at route, routes ...map[string]any) {
	spec := vs.Object["spec"].(map[string]any)
	items, _ := spec["http"].([]any)
	i := 0
	for j, it := range items {
		if m, ok := it.(map[string]any); ok && reflect.ValueOf(m).UnsafePointer() == reflect.ValueOf(at.obj).UnsafePointer() {
			i = j
			break
		}
	}
	next := append([]any{}, items[:i]...)
	for _, r := range routes {
		next = append(next, r)
	}
	spec["http"] = append(next, items[i:]...)
}

// removeRoutes returns a copy of vs without the HTTP routes whose name
// drop accepts, and whether there were any.
func removeRoutes(vs *unstructured.Unstructured, drop func(name string) bool) (*unstructured.Unstructured, bool, error) {
	out := vs.DeepCopy()
	list, found, err := unstructured.NestedFieldNoCopy(out.Object, "spec", "http")
	if err != nil || !found {
		return out, false, nil
	}
	items, ok := list.([]any)
	if !ok {
		return nil, false, fmt.Errorf("VirtualService %s/%s: spec.http is not a list", vs.GetNamespace(), vs.GetName())
	}
	kept := make([]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			if n, _ := m["name"].(string); drop(n) {
				continue
			}
		}
		kept = append(kept, it)
	}
	if len(kept) == len(items) {
		return out, false, nil
	}
	out.Object["spec"].(map[string]any)["http"] = kept
	return out, true, nil
}
