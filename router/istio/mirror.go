package istio

import (
	"github.com/fulcrum-ml/fulcrum/router"

	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Mirror is the copy of traffic the shadow stage sends to a subset of the
// model: Istio's mirror (destination host and subset) and mirrorPercentage
// on every managed route.
type Mirror = router.Mirror

// mirrorFields are every spelling of a route's mirror that the CRD accepts.
var mirrorFields = []string{"mirror", "mirrors", "mirrorPercentage", "mirror_percent", "mirrorPercent"}

// SetMirror returns a copy of vs whose managed routes mirror m.Percent% of
// their requests to subset m.Subset of the model's host, and whether
// anything changed. A route that already mirrors elsewhere (a user's own
// mirror, in any spelling) is refused with an error naming it: Fulcrum
// never overwrites a mirror it did not set. vs is never modified.
func SetMirror(vs *unstructured.Unstructured, t Target, m Mirror) (*unstructured.Unstructured, bool, error) {
	if m.Subset == "" || m.Percent < 1 || m.Percent > 100 {
		return nil, false, fmt.Errorf("mirror to subset %q at %d%%: want a subset and 1 to 100 percent", m.Subset, m.Percent)
	}
	if err := CheckSubsets(t.DestinationRule, m.Subset); err != nil {
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
		if hasMirror(r.obj) && !ownMirror(r.obj, t, vs.GetNamespace(), m.Subset) {
			return nil, false, fmt.Errorf("VirtualService %s/%s route %q already mirrors requests elsewhere (%v): the shadow stage needs the route's mirror; remove that mirror, or drop spec.strategy.canary.shadow",
				vs.GetNamespace(), vs.GetName(), r.key, mirrorOf(r.obj))
		}
		for _, f := range mirrorFields {
			delete(r.obj, f)
		}
		dest := map[string]any{"host": dests[0].host, "subset": m.Subset}
		if dests[0].port != nil {
			dest["port"] = deepCopyValue(dests[0].port)
		}
		r.obj["mirror"] = dest
		r.obj["mirrorPercentage"] = map[string]any{"value": float64(m.Percent)}
	}
	return out, !equality.Semantic.DeepEqual(vs.Object, out.Object), nil
}

// ClearMirror returns a copy of vs without the mirror to subset that a
// shadow stage set on the managed routes, and whether anything changed.
// Any other mirror (a user's) is left as it is. vs is never modified.
func ClearMirror(vs *unstructured.Unstructured, t Target, subset string) (*unstructured.Unstructured, bool, error) {
	out := vs.DeepCopy()
	routes, err := managedRoutes(out, t)
	if err != nil {
		return nil, false, err
	}
	for _, r := range routes {
		if subset != "" && ownMirror(r.obj, t, vs.GetNamespace(), subset) {
			for _, f := range mirrorFields {
				delete(r.obj, f)
			}
		}
	}
	return out, !equality.Semantic.DeepEqual(vs.Object, out.Object), nil
}

// hasMirror reports whether a route mirrors requests in any spelling.
func hasMirror(route map[string]any) bool {
	for _, f := range mirrorFields {
		if _, ok := route[f]; ok {
			return true
		}
	}
	return false
}

func mirrorOf(route map[string]any) map[string]any {
	out := map[string]any{}
	for _, f := range mirrorFields {
		if v, ok := route[f]; ok {
			out[f] = v
		}
	}
	return out
}

// ownMirror reports whether a route's mirror is the one a shadow stage
// writes for subset: a single mirror to the model's host at subset, with at
// most a mirrorPercentage beside it (ns is the VirtualService's namespace,
// which short hosts are relative to). A route without a mirror is not one.
func ownMirror(route map[string]any, t Target, ns, subset string) bool {
	m, ok := route["mirror"].(map[string]any)
	if !ok {
		return false
	}
	for _, f := range []string{"mirrors", "mirror_percent", "mirrorPercent"} {
		if _, has := route[f]; has {
			return false
		}
	}
	host, _ := m["host"].(string)
	s, _ := m["subset"].(string)
	dr := t.DestinationRule
	return s == subset && t.Domain.Same(Host{Name: host, Namespace: ns}, Host{Name: dr.Spec.GetHost(), Namespace: dr.Namespace})
}

// ForeignMirror returns a message naming the first managed route that
// mirrors requests somewhere other than the shadow stage's mirror to
// subset, or "" when there is none. The shadow stage cannot start or go on
// over such a route: Fulcrum never overwrites a mirror it did not set.
func ForeignMirror(vs *unstructured.Unstructured, t Target, subset string) string {
	routes, err := managedRoutes(vs, t)
	if err != nil {
		return ""
	}
	for _, r := range routes {
		if hasMirror(r.obj) && !ownMirror(r.obj, t, vs.GetNamespace(), subset) {
			return fmt.Sprintf("VirtualService %s/%s route %q already mirrors requests elsewhere (%v): the shadow stage needs the route's mirror; remove that mirror, or drop spec.strategy.canary.shadow",
				vs.GetNamespace(), vs.GetName(), r.key, mirrorOf(r.obj))
		}
	}
	return ""
}
