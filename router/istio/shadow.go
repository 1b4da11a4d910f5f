package istio

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Shadow says that an HTTP route in front of a managed route catches all of
// its traffic, so the managed route's weights steer nothing: Istio sends a
// request to the first route that matches it.
type Shadow struct {
	// Route is the managed route's key (see RouteWeights).
	Route string
	// By is the first route in front of it that catches all of its traffic:
	// its name, or http[INDEX] when it is unnamed.
	By string
}

// String says what shadows what and how to fix it.
func (s Shadow) String() string {
	return fmt.Sprintf("route %q in front of managed route %q catches all of its traffic: move route %q after %q or give it a narrower match",
		s.By, s.Route, s.By, s.Route)
}

// Shadows returns, for each managed route (in the order of the managed
// routes), the first earlier route in spec.http that surely catches all of
// its traffic. An earlier route R catches all traffic of the managed route M
// when
//
//   - R has no match, an empty match list, or a match block with no
//     condition (only a name, or {}); or
//   - every match block of M has a match block of R that is equal or weaker:
//     each of its conditions appears identically in M's block. The entries
//     of headers, queryParams, withoutHeaders and sourceLabels count one by
//     one (R's block may name fewer of them), uri counts together with
//     ignoreUriCase, and when M's block names gateways, R's block must name
//     the same gateways (match gateways replace the VirtualService's own).
//
// This is conservative: a partial overlap (R catches some of M's traffic),
// or a match that is weaker only by meaning (a shorter uri prefix, a regex
// that happens to cover M's value, case-insensitive against case-sensitive),
// is not reported. Routes resolve as in ReadWeights; a route that does not
// resolve is an error.
func Shadows(vs *unstructured.Unstructured, t Target) ([]Shadow, error) {
	routes, err := managedRoutes(vs, t)
	if err != nil {
		return nil, err
	}
	items, _, _ := unstructured.NestedFieldNoCopy(vs.Object, "spec", "http")
	http, _ := items.([]any)
	var out []Shadow
	for _, r := range routes {
		i := routeIndex(http, r, t)
		for j := 0; j < i; j++ {
			front, _ := http[j].(map[string]any)
			if catchesAll(front, r.obj) {
				out = append(out, Shadow{Route: r.key, By: routeKey(front, j)})
				break
			}
		}
	}
	return out, nil
}

// Shadowed says in one line per shadowed managed route what Shadows found,
// with the fix. It returns nothing when the managed routes do not resolve:
// that error is reported where the weights are read or written.
func Shadowed(vs *unstructured.Unstructured, t Target) []string {
	shadows, err := Shadows(vs, t)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range shadows {
		out = append(out, s.String())
	}
	return out
}

// routeIndex finds a managed route in spec.http the way managedRoutes
// resolves it: the only route, or the first route of that name.
func routeIndex(http []any, r route, t Target) int {
	if len(t.Routes) == 0 {
		return 0
	}
	for i, it := range http {
		if m, _ := it.(map[string]any); m != nil && m["name"] == r.key {
			return i
		}
	}
	return 0
}

func routeKey(r map[string]any, i int) string {
	if name, _ := r["name"].(string); name != "" {
		return name
	}
	return fmt.Sprintf("http[%d]", i)
}

// catchesAll reports whether the route front, placed before route r, surely
// takes every request r would match.
func catchesAll(front, r map[string]any) bool {
	fronts, ok := matchBlocks(front)
	if !ok {
		return false
	}
	if len(fronts) == 0 {
		return true
	}
	for _, f := range fronts {
		if f != nil && len(f) == 0 {
			return true
		}
	}
	blocks, ok := matchBlocks(r)
	if !ok || len(blocks) == 0 {
		return false
	}
	for _, b := range blocks {
		if b == nil {
			return false
		}
		covered := false
		for _, f := range fronts {
			if f != nil && weaker(f, b) {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// matchBlocks returns the conditions of each match block of a route (nil
// for a block that is not an object), and false when match is not a list.
// No match, null and [] all return no blocks: the route matches everything.
func matchBlocks(r map[string]any) ([]map[string]any, bool) {
	v, ok := r["match"]
	if !ok || v == nil {
		return nil, true
	}
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]map[string]any, 0, len(list))
	for _, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			out = append(out, nil)
			continue
		}
		out = append(out, conditions(m))
	}
	return out, true
}

// conditions returns the conditions of a match block: everything but its
// name and statPrefix (labels, not conditions), with empty values dropped
// and ignoreUriCase folded into uri (it only changes how uri compares).
func conditions(block map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range block {
		switch k {
		case "name", "statPrefix", "ignoreUriCase":
			continue
		}
		if isEmpty(v) {
			continue
		}
		out[k] = v
	}
	if uri, ok := out["uri"]; ok {
		ignoreCase, _ := block["ignoreUriCase"].(bool)
		out["uri"] = map[string]any{"uri": uri, "ignoreUriCase": ignoreCase}
	}
	return out
}

// perEntry are match conditions that are maps of conditions that must all
// hold: a block that names fewer of their entries is weaker.
var perEntry = map[string]bool{"headers": true, "queryParams": true, "withoutHeaders": true, "sourceLabels": true}

// weaker reports whether every condition of f appears identically in b, so
// f matches every request b matches.
func weaker(f, b map[string]any) bool {
	if _, ok := b["gateways"]; ok {
		if _, ok := f["gateways"]; !ok {
			return false
		}
	}
	for k, fv := range f {
		bv, ok := b[k]
		if !ok {
			return false
		}
		fm, fIsMap := fv.(map[string]any)
		bm, bIsMap := bv.(map[string]any)
		if perEntry[k] && fIsMap && bIsMap {
			for name, cond := range fm {
				other, ok := bm[name]
				if !ok || !sameJSON(cond, other) {
					return false
				}
			}
			continue
		}
		if !sameJSON(fv, bv) {
			return false
		}
	}
	return true
}

// sameJSON compares two unstructured values by their canonical JSON, so an
// integer decoded as int64 equals the same integer decoded as float64.
func sameJSON(a, b any) bool {
	ja, err := canonical(a)
	if err != nil {
		return false
	}
	jb, err := canonical(b)
	if err != nil {
		return false
	}
	return bytes.Equal(ja, jb)
}
