package gatewayapi

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func route(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// Gateway API weights are relative; Fulcrum reads them as percentages
// that sum to 100.
func TestRelativeWeightsReadAsPercentages(t *testing.T) {
	for name, tc := range map[string]struct {
		refs string
		want map[string]int32
	}{
		"default weight 1 each": {`[{name: a}, {name: b}]`, map[string]int32{"a": 50, "b": 50}},
		"thirds":                {`[{name: a}, {name: b}, {name: c}]`, map[string]int32{"a": 34, "b": 33, "c": 33}},
		"lone backend":          {`[{name: a}]`, map[string]int32{"a": 100}},
		"percentages":           {`[{name: a, weight: 70}, {name: b, weight: 30}]`, map[string]int32{"a": 70, "b": 30}},
		"relative 3:1":          {`[{name: a, weight: 3}, {name: b, weight: 1}]`, map[string]int32{"a": 75, "b": 25}},
		"all zero":              {`[{name: a, weight: 0}, {name: b, weight: 0}]`, map[string]int32{"a": 0, "b": 0}},
	} {
		u := route(t, "kind: HTTPRoute\nmetadata: {name: r, namespace: ml}\nspec:\n  rules:\n  - backendRefs: "+tc.refs)
		rw, err := readWeights(u, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := rw["rules[0]"]
		var sum int32
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %d, want %d (all: %v)", name, k, got[k], v, got)
			}
			sum += got[k]
		}
		if sum != 100 && name != "all zero" {
			t.Errorf("%s: weights sum to %d", name, sum)
		}
	}
}

// What Fulcrum cannot manage is refused with the fix.
func TestRulesFulcrumCannotManage(t *testing.T) {
	for name, tc := range map[string]struct {
		spec, rules, want string
	}{
		"two rules, none named":   {"  - backendRefs: [{name: a}]\n  - backendRefs: [{name: b}]", "", "has 2 rules: list the ones Fulcrum manages in spec.httpRoute.rules"},
		"missing rule":            {"  - name: x\n    backendRefs: [{name: a}]", "y", `no rule named "y" (named rules: "x")`},
		"not a Service":           {"  - backendRefs: [{group: example.com, kind: Bucket, name: a}]", "", "is a Bucket.example.com, not a Service"},
		"another namespace":       {"  - backendRefs: [{name: a, namespace: other}]", "", "in another namespace"},
		"twice":                   {"  - backendRefs: [{name: a}, {name: a}]", "", `lists Service "a" twice`},
		"no backends (redirects)": {"  - filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301}}]", "", "has no backendRefs"},
	} {
		u := route(t, "kind: HTTPRoute\nmetadata: {name: r, namespace: ml}\nspec:\n  rules:\n"+tc.spec)
		var names []string
		if tc.rules != "" {
			names = []string{tc.rules}
		}
		_, err := readWeights(u, names)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", name, err, tc.want)
		}
	}
}
