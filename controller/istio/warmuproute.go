package istio

import (
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// WarmupRoutePrefix starts the name of every warm-up route. Routes so named
// are Fulcrum's: they never count as the user's routes (the "only HTTP
// route" rule, route keys, the guard's checks).
const WarmupRoutePrefix = "fulcrum-warmup-"

// WarmupRouteName is the warm-up route of a ModelRollout.
func WarmupRouteName(rollout string) string { return WarmupRoutePrefix + rollout }

// IsWarmupRoute reports whether an HTTP route name is a warm-up route's.
func IsWarmupRoute(name string) bool { return strings.HasPrefix(name, WarmupRoutePrefix) }

// WarmupRoute is the route the warm-up gate needs: requests carrying Header
// with value Subset go to that subset of the model.
type WarmupRoute struct {
	// Name of the route (WarmupRouteName).
	Name string
	// Header the warm-up requests carry, and the subset they name.
	Header, Subset string
}

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
	dest := map[string]any{"host": dests[0].host, "subset": w.Subset}
	if dests[0].port != nil {
		dest["port"] = deepCopyValue(dests[0].port)
	}
	wr := map[string]any{
		"name":  w.Name,
		"match": []any{map[string]any{"headers": map[string]any{w.Header: map[string]any{"exact": w.Subset}}}},
		"route": []any{map[string]any{"destination": dest}},
	}
	items, _ := out.Object["spec"].(map[string]any)["http"].([]any)
	at := 0
	for i, it := range items {
		if m, ok := it.(map[string]any); ok && reflect.ValueOf(m).UnsafePointer() == reflect.ValueOf(routes[0].obj).UnsafePointer() {
			at = i
			break
		}
	}
	next := append(append(append([]any{}, items[:at]...), wr), items[at:]...)
	out.Object["spec"].(map[string]any)["http"] = next
	return out, !equality.Semantic.DeepEqual(vs.Object, out.Object), nil
}

// ClearWarmupRoute returns a copy of vs without the HTTP route named name
// (a warm-up route), and whether it had one. vs is never modified.
func ClearWarmupRoute(vs *unstructured.Unstructured, name string) (*unstructured.Unstructured, bool, error) {
	out := vs.DeepCopy()
	if !IsWarmupRoute(name) {
		return out, false, nil
	}
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
		if m, ok := it.(map[string]any); ok && m["name"] == name {
			continue
		}
		kept = append(kept, it)
	}
	if len(kept) == len(items) {
		return out, false, nil
	}
	out.Object["spec"].(map[string]any)["http"] = kept
	return out, true, nil
}
