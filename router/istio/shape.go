package istio

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// SteeringFields are the fields of an Istio HTTPRoute that decide who gets
// the route's traffic or what they get back, apart from the weights Fulcrum
// writes: which requests the route takes (match), a copy of them sent
// elsewhere (mirror, mirrors and the mirror percentage, in all three
// spellings the CRD accepts: mirrorPercentage and the deprecated
// mirror_percent and mirrorPercent), injected errors and delays (fault), and
// answers that bypass the destinations (redirect, directResponse, delegate).
//
// Fields that only tune how the chosen destinations are reached (retries,
// timeout, headers, corsPolicy, rewrite) are not steering: editing them
// changes neither who gets the route's traffic nor which version serves it.
//
// The order is the order in which changes are reported.
var SteeringFields = []string{
	"match", "mirror", "mirrors", "mirrorPercentage", "mirror_percent", "mirrorPercent",
	"fault", "redirect", "directResponse", "delegate",
}

// The kinds of ShapeChange.
const (
	FieldAdded   = "added"
	FieldChanged = "changed"
	FieldRemoved = "removed"
)

// ShapeChange is one steering field of a managed route that differs from
// the baseline.
type ShapeChange struct {
	// Route is the route's key (see RouteWeights).
	Route string
	// Field is the steering field, one of SteeringFields.
	Field string
	// Change is FieldAdded, FieldChanged or FieldRemoved.
	Change string
}

// String says what changed, e.g. `route "predict": fault added`.
func (c ShapeChange) String() string {
	return fmt.Sprintf("route %q: %s %s", c.Route, c.Field, c.Change)
}

// Shapes fingerprints the steering fields of every managed route, in the
// order of the managed routes: for each field that is set (not null, and not
// an empty list or object), the first 12 hex digits of the SHA-256 of its
// canonical JSON (object keys sorted), so the result does not depend on map
// order or formatting. Fields is nil for a route with no steering field.
// Routes resolve as in ReadWeights (t.DestinationRule is not used); a route
// that does not resolve is an error.
func Shapes(vs *unstructured.Unstructured, t Target) ([]v1alpha1.RouteShape, error) {
	routes, err := managedRoutes(vs, t)
	if err != nil {
		return nil, err
	}
	out := make([]v1alpha1.RouteShape, 0, len(routes))
	for _, r := range routes {
		shape := v1alpha1.RouteShape{Route: r.key}
		for _, f := range SteeringFields {
			v, ok := r.obj[f]
			if !ok || isEmpty(v) {
				continue
			}
			h, err := fingerprint(v)
			if err != nil {
				return nil, fmt.Errorf("VirtualService %s/%s route %q: %s: %w", vs.GetNamespace(), vs.GetName(), r.key, f, err)
			}
			if shape.Fields == nil {
				shape.Fields = map[string]string{}
			}
			shape.Fields[f] = h
		}
		out = append(out, shape)
	}
	return out, nil
}

// DiffShapes returns every steering field that was added, changed or
// removed between the baseline and now, route by route in baseline order,
// field by field in SteeringFields order (then any other field name in the
// baseline or now, sorted). Routes absent from the baseline are not changes,
// and nor are routes absent from now: a managed route that no longer
// resolves is an error of Shapes, reported where the weights are written.
func DiffShapes(baseline, now []v1alpha1.RouteShape) []ShapeChange {
	current := make(map[string]map[string]string, len(now))
	for _, s := range now {
		current[s.Route] = s.Fields
	}
	var out []ShapeChange
	for _, b := range baseline {
		n, ok := current[b.Route]
		if !ok {
			continue
		}
		for _, f := range fieldOrder(b.Fields, n) {
			was, had := b.Fields[f]
			is, has := n[f]
			switch {
			case !had && has:
				out = append(out, ShapeChange{Route: b.Route, Field: f, Change: FieldAdded})
			case had && !has:
				out = append(out, ShapeChange{Route: b.Route, Field: f, Change: FieldRemoved})
			case had && was != is:
				out = append(out, ShapeChange{Route: b.Route, Field: f, Change: FieldChanged})
			}
		}
	}
	return out
}

// ShapeChanges says in one line per change what DiffShapes found, e.g.
// `route "predict": fault added` or `route "predict": match changed`.
func ShapeChanges(baseline, now []v1alpha1.RouteShape) []string {
	var out []string
	for _, c := range DiffShapes(baseline, now) {
		out = append(out, c.String())
	}
	return out
}

// fieldOrder lists SteeringFields, then the other keys of a and b sorted,
// so a baseline taken with a longer list still compares.
func fieldOrder(a, b map[string]string) []string {
	out := slices.Clone(SteeringFields)
	var extra []string
	for _, m := range []map[string]string{a, b} {
		for k := range m {
			if !slices.Contains(out, k) && !slices.Contains(extra, k) {
				extra = append(extra, k)
			}
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// fingerprint hashes the canonical JSON of an unstructured value:
// encoding/json writes object keys sorted, and numbers decoded as int64 or
// float64 print the same when they are equal integers.
func fingerprint(v any) (string, error) {
	raw, err := canonical(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:12], nil
}

func canonical(v any) ([]byte, error) {
	return json.Marshal(v)
}

// isEmpty reports whether a field value says nothing: null, [] or {}.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
