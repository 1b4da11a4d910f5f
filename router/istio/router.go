// Package istio computes the weights of a user-owned Istio VirtualService.
//
// The router is pure: (VirtualService, DestinationRule, managed route names,
// desired weights) → (new VirtualService, changed, error). It never talks to
// the API server, so every rule below is tested on YAML fixtures.
//
// The VirtualService is handled as unstructured data, exactly as the API
// server returned it, and only the `weight` of destinations in managed HTTP
// routes is written (plus destinations appended for subsets that get traffic
// and are not listed yet). A round trip through the generated protobuf types
// would re-render durations and enums and silently drop fields unknown to the
// compiled Istio API version, which breaks "everything else stays exactly as
// written". Because only the instance data is touched, the same code works for
// every served version of networking.istio.io (v1, v1beta1, v1alpha3 share one
// schema). The DestinationRule is only read, so it is decoded into the typed
// istio.io/client-go networking/v1 DestinationRule.
package istio

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// RouteWeights are the weights observed on each managed route, by subset.
// The key of a route is its name, or "http[0]" for an unnamed single route.
type RouteWeights = router.RouteWeights

// Target says what the router manages in a VirtualService.
type Target struct {
	// Routes are the managed HTTP route names; empty means the VirtualService's
	// only HTTP route.
	Routes []string
	// DestinationRule holds the model's host and its subsets (versions).
	DestinationRule *networkingv1.DestinationRule
	// Domain is the cluster's DNS domain that short hosts expand into
	// (cluster.local when empty); a cluster with another domain would see
	// its full host names as some other host.
	Domain ClusterDomain
}

// DecodeDestinationRule turns an unstructured DestinationRule of any served
// version into the typed networking/v1 form.
func DecodeDestinationRule(u *unstructured.Unstructured) (*networkingv1.DestinationRule, error) {
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("encode DestinationRule %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	dr := &networkingv1.DestinationRule{}
	if err := json.Unmarshal(raw, dr); err != nil {
		return nil, fmt.Errorf("decode DestinationRule %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return dr, nil
}

// SubsetLabels returns the pod labels of a DestinationRule subset, and false
// when the subset does not exist.
func SubsetLabels(dr *networkingv1.DestinationRule, subset string) (map[string]string, bool) {
	for _, s := range dr.Spec.GetSubsets() {
		if s.GetName() == subset {
			return s.GetLabels(), true
		}
	}
	return nil, false
}

// CheckSubsets returns an error naming every subset missing from the
// DestinationRule, with the fix.
func CheckSubsets(dr *networkingv1.DestinationRule, subsets ...string) error {
	var missing []string
	for _, s := range subsets {
		if s == "" {
			continue
		}
		if _, ok := SubsetLabels(dr, s); !ok && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var have []string
	for _, s := range dr.Spec.GetSubsets() {
		have = append(have, s.GetName())
	}
	return fmt.Errorf("DestinationRule %s/%s has no subset %s (it has: %s): add a subset with the version's pod labels",
		dr.Namespace, dr.Name, strings.Join(quote(missing), ", "), strings.Join(quote(have), ", "))
}

// ReadWeights returns the weights of the managed routes as they are now.
// Destinations of subsets not listed count as weight 0. It fails on the same
// configuration problems as SetWeights.
func ReadWeights(vs *unstructured.Unstructured, t Target) (RouteWeights, error) {
	routes, err := managedRoutes(vs, t)
	if err != nil {
		return nil, err
	}
	out := RouteWeights{}
	for _, r := range routes {
		dests, err := modelDestinations(vs, r, t)
		if err != nil {
			return nil, err
		}
		w := map[string]int32{}
		for _, d := range dests {
			w[d.subset] = d.effectiveWeight(len(dests))
		}
		out[r.key] = w
	}
	return out, nil
}

// SetWeights returns a copy of vs whose managed routes carry the desired
// weights, and whether anything changed. Subsets absent from weights get 0.
// Destinations keep their order, host and port; destinations at weight 0 stay
// in the route with weight 0 (so the user's list of versions is not
// rewritten, and a later step only changes numbers); subsets that get traffic
// and are not listed are appended, copying the host and port of the route's
// first destination. vs is never modified.
func SetWeights(vs *unstructured.Unstructured, t Target, weights []v1alpha1.SubsetWeight) (*unstructured.Unstructured, bool, error) {
	want, err := weightMap(weights)
	if err != nil {
		return nil, false, err
	}
	var getting []string
	for _, s := range sortedKeys(want) {
		if want[s] > 0 {
			getting = append(getting, s)
		}
	}
	// Only subsets that get traffic must exist: a retired version listed at
	// weight 0 may already be gone from the DestinationRule.
	if err := CheckSubsets(t.DestinationRule, getting...); err != nil {
		return nil, false, err
	}
	out := vs.DeepCopy()
	routes, err := managedRoutes(out, t)
	if err != nil {
		return nil, false, err
	}
	for _, r := range routes {
		dests, err := modelDestinations(out, r, t)
		if err != nil {
			return nil, false, err
		}
		listed := map[string]bool{}
		for _, d := range dests {
			listed[d.subset] = true
		}
		var added []any
		for _, s := range orderOf(weights) {
			if w := want[s]; w > 0 && !listed[s] {
				dest := map[string]any{"host": dests[0].host, "subset": s}
				if dests[0].port != nil {
					dest["port"] = deepCopyValue(dests[0].port)
				}
				added = append(added, map[string]any{"destination": dest, "weight": int64(w)})
			}
		}
		total := len(dests) + len(added)
		for _, d := range dests {
			w := want[d.subset]
			// A lone destination with no weight already gets 100%; leave
			// it unwritten so a no-op stays a no-op.
			if _, has := d.obj["weight"]; !has && total == 1 && w == 100 {
				continue
			}
			d.obj["weight"] = int64(w)
		}
		if len(added) > 0 {
			r.obj["route"] = append(r.obj["route"].([]any), added...)
		}
	}
	return out, !equality.Semantic.DeepEqual(vs.Object, out.Object), nil
}

type route struct {
	key   string
	name  string
	index int
	obj   map[string]any
}

type destination struct {
	obj    map[string]any // the HTTPRouteDestination
	host   string
	subset string
	port   any
}

func (d destination) effectiveWeight(n int) int32 {
	v, ok := d.obj["weight"]
	if !ok {
		if n == 1 {
			return 100
		}
		return 0
	}
	return int32(router.JSONInt(v))
}

func managedRoutes(vs *unstructured.Unstructured, t Target) ([]route, error) {
	ref := vs.GetNamespace() + "/" + vs.GetName()
	httpList, _, err := unstructured.NestedFieldNoCopy(vs.Object, "spec", "http")
	if err != nil {
		return nil, &RouteError{Message: fmt.Sprintf("VirtualService %s: spec.http: %v", ref, err)}
	}
	items, _ := httpList.([]any)
	var all []route
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, &RouteError{Message: fmt.Sprintf("VirtualService %s: spec.http[%d] is not an object", ref, i)}
		}
		name, _ := m["name"].(string)
		if IsOwnedRoute(name) {
			continue // Fulcrum's own, never one of the user's routes
		}
		all = append(all, route{key: name, name: name, index: i, obj: m})
	}
	if len(t.Routes) == 0 {
		if len(all) != 1 {
			return nil, &RouteError{UserRoutes: len(all), Routes: routeNames(all, false), Message: fmt.Sprintf(
				"VirtualService %s has %d HTTP routes: list the ones Fulcrum manages in spec.virtualService.routes (it may be left out only when there is exactly one; an unnamed route needs a name: field first)", ref, len(all))}
		}
		if all[0].key == "" {
			all[0].key = "http[0]"
		}
		return all, nil
	}
	var out []route
	rerr := &RouteError{Routes: routeNames(all, true)}
	for i, name := range t.Routes {
		j := slices.IndexFunc(all, func(r route) bool { return r.key == name })
		if j < 0 {
			rerr.Missing = append(rerr.Missing, i)
			continue
		}
		out = append(out, all[j])
	}
	if len(rerr.Missing) > 0 {
		name := t.Routes[rerr.Missing[0]]
		rerr.Message = fmt.Sprintf("VirtualService %s has no HTTP route named %q (named routes: %s): fix spec.virtualService.routes or name the route in the VirtualService",
			ref, name, strings.Join(quoteOrNone(rerr.Routes), ", "))
		return nil, rerr
	}
	return out, nil
}

func quoteOrNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

func modelDestinations(vs *unstructured.Unstructured, r route, t Target) ([]destination, error) {
	ref := vs.GetNamespace() + "/" + vs.GetName()
	dr := t.DestinationRule
	if _, ok := r.obj["delegate"]; ok {
		return nil, fmt.Errorf("VirtualService %s route %q delegates to another VirtualService: manage the delegate's route instead", ref, r.key)
	}
	list, _ := r.obj["route"].([]any)
	if len(list) == 0 {
		if dr == nil {
			return nil, fmt.Errorf("VirtualService %s route %q has no destinations: add one for the model's host", ref, r.key)
		}
		return nil, fmt.Errorf("VirtualService %s route %q has no destinations: add one for host %q", ref, r.key, dr.Spec.GetHost())
	}
	// Without the DestinationRule (the webhook's guard reading an edit)
	// destinations are not checked against the model's host.
	var model Host
	if dr != nil {
		model = Host{Name: dr.Spec.GetHost(), Namespace: dr.Namespace}
	}
	var out []destination
	seen := map[string]bool{}
	for i, it := range list {
		m, _ := it.(map[string]any)
		dest, _ := m["destination"].(map[string]any)
		host, _ := dest["host"].(string)
		subset, _ := dest["subset"].(string)
		if dr != nil && !t.Domain.Same(Host{Name: host, Namespace: vs.GetNamespace()}, model) {
			return nil, fmt.Errorf("VirtualService %s route %q destination %d points at host %q, not the model's host %q from DestinationRule %s/%s (Istio reads them as %s and %s in cluster domain %s): managed routes may only send traffic to the model; write the DestinationRule's host, or its short name",
				ref, r.key, i, host, dr.Spec.GetHost(), dr.Namespace, dr.Name, t.Domain.FQDN(host, vs.GetNamespace()), t.Domain.FQDN(model.Name, model.Namespace), t.Domain)
		}
		if subset == "" {
			return nil, fmt.Errorf("VirtualService %s route %q destination %d has no subset: give every destination of a managed route a DestinationRule subset", ref, r.key, i)
		}
		if seen[subset] {
			return nil, fmt.Errorf("VirtualService %s route %q lists subset %q twice: keep one destination per subset", ref, r.key, subset)
		}
		seen[subset] = true
		out = append(out, destination{obj: m, host: host, subset: subset, port: dest["port"]})
	}
	return out, nil
}

func weightMap(weights []v1alpha1.SubsetWeight) (map[string]int32, error) {
	if len(weights) == 0 {
		return nil, fmt.Errorf("desired weights are empty: give at least one subset")
	}
	m := map[string]int32{}
	var sum int32
	for _, w := range weights {
		if w.Weight < 0 || w.Weight > 100 {
			return nil, fmt.Errorf("weight of subset %q is %d: weights are percentages from 0 to 100", w.Subset, w.Weight)
		}
		if _, dup := m[w.Subset]; dup {
			return nil, fmt.Errorf("subset %q appears twice in the desired weights", w.Subset)
		}
		m[w.Subset] = w.Weight
		sum += w.Weight
	}
	if sum != 100 {
		return nil, fmt.Errorf("desired weights sum to %d: Istio needs the weights of a route to sum to 100", sum)
	}
	return m, nil
}

func orderOf(weights []v1alpha1.SubsetWeight) []string {
	out := make([]string, 0, len(weights))
	for _, w := range weights {
		out = append(out, w.Subset)
	}
	return out
}

func sortedKeys(m map[string]int32) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func deepCopyValue(v any) any {
	return runtimeDeepCopy(v)
}

func quote(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}
