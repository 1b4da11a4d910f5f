package gatewayapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
)

// rule is one managed rule of a route: its key (name, or "rules[0]" for
// the only, unnamed rule) and the rule as stored in the object.
type rule struct {
	key string
	obj map[string]any
}

// backend is one backendRef of a managed rule: a version's Service.
type backend struct {
	obj     map[string]any
	service string
}

// weight is the backendRef's weight: Gateway API reads a missing weight
// as 1.
func (b backend) weight() int64 {
	v, ok := b.obj["weight"]
	if !ok {
		return 1
	}
	return router.JSONInt(v)
}

// resolveRules returns the rules the rollout names, or the route's only
// rule when it names none.
func resolveRules(obj *unstructured.Unstructured, names []string) ([]rule, error) {
	ref := obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
	raw, _, err := unstructured.NestedFieldNoCopy(obj.Object, "spec", "rules")
	if err != nil {
		return nil, fmt.Errorf("%s: spec.rules: %w", ref, err)
	}
	items, _ := raw.([]any)
	var all []rule
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: spec.rules[%d] is not an object", ref, i)
		}
		name, _ := m["name"].(string)
		all = append(all, rule{key: name, obj: m})
	}
	if len(names) == 0 {
		if len(all) != 1 {
			return nil, fmt.Errorf("%s has %d rules: list the ones Fulcrum manages in %s (it may be left out only when there is exactly one; an unnamed rule needs a name: field first)", ref, len(all), fieldOf(obj.GetKind()))
		}
		if all[0].key == "" {
			all[0].key = "rules[0]"
		}
		return all, nil
	}
	var out []rule
	for _, name := range names {
		i := slices.IndexFunc(all, func(r rule) bool { return r.key == name })
		if i < 0 {
			var have []string
			for _, r := range all {
				if r.key != "" {
					have = append(have, strconv.Quote(r.key))
				}
			}
			if len(have) == 0 {
				have = []string{"none"}
			}
			return nil, fmt.Errorf("%s has no rule named %q (named rules: %s): fix %s or name the rule in the route",
				ref, name, strings.Join(have, ", "), fieldOf(obj.GetKind()))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func fieldOf(kind string) string {
	return v1alpha1.RouteRef{Kind: kind}.RoutesField()
}

// backends returns the backendRefs of a managed rule. Fulcrum manages a
// rule whose backends are all Services of the route's namespace, each
// listed once: a version is a Service.
func backends(obj *unstructured.Unstructured, r rule) ([]backend, error) {
	ref := obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
	list, _ := r.obj["backendRefs"].([]any)
	if len(list) == 0 {
		return nil, fmt.Errorf("%s rule %q has no backendRefs: add one for the stable version's Service", ref, r.key)
	}
	var out []backend
	seen := map[string]bool{}
	for i, it := range list {
		m, _ := it.(map[string]any)
		group, _ := m["group"].(string)
		kind, _ := m["kind"].(string)
		name, _ := m["name"].(string)
		ns, _ := m["namespace"].(string)
		if group != "" || (kind != "" && kind != "Service") {
			return nil, fmt.Errorf("%s rule %q backendRefs[%d] is a %s%s, not a Service: Fulcrum's versions are Services of the route's namespace", ref, r.key, i, kind, groupSuffix(group))
		}
		if ns != "" && ns != obj.GetNamespace() {
			return nil, fmt.Errorf("%s rule %q backendRefs[%d] is Service %s/%s in another namespace: Fulcrum manages versions in the route's namespace (%s)", ref, r.key, i, ns, name, obj.GetNamespace())
		}
		if name == "" {
			return nil, fmt.Errorf("%s rule %q backendRefs[%d] names no Service", ref, r.key, i)
		}
		if seen[name] {
			return nil, fmt.Errorf("%s rule %q lists Service %q twice: keep one backendRef per version", ref, r.key, name)
		}
		seen[name] = true
		out = append(out, backend{obj: m, service: name})
	}
	return out, nil
}

func groupSuffix(g string) string {
	if g == "" {
		return ""
	}
	return "." + g
}

// readWeights returns the managed rules' weights as percentages. Gateway
// API weights are relative (a backend gets weight/sum of the requests);
// Fulcrum writes percentages, so they read back exactly. Other weights are
// rounded to percentages summing to 100 (largest remainder first).
func readWeights(obj *unstructured.Unstructured, names []string) (router.RouteWeights, error) {
	rules, err := resolveRules(obj, names)
	if err != nil {
		return nil, err
	}
	out := router.RouteWeights{}
	for _, r := range rules {
		bs, err := backends(obj, r)
		if err != nil {
			return nil, err
		}
		out[r.key] = percentages(bs)
	}
	return out, nil
}

func percentages(bs []backend) map[string]int32 {
	var sum int64
	for _, b := range bs {
		sum += max(b.weight(), 0)
	}
	out := make(map[string]int32, len(bs))
	if sum == 0 {
		for _, b := range bs {
			out[b.service] = 0
		}
		return out
	}
	type rem struct {
		service string
		frac    int64
	}
	var rems []rem
	var given int32
	for _, b := range bs {
		w := max(b.weight(), 0) * 100
		out[b.service] = int32(w / sum)
		given += int32(w / sum)
		rems = append(rems, rem{b.service, w % sum})
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return int(b.frac - a.frac) })
	for i := 0; given < 100 && i < len(rems); i++ {
		if rems[i].frac > 0 {
			out[rems[i].service]++
			given++
		}
	}
	return out
}

// setWeights returns a copy of obj whose managed rules carry the weights,
// and whether anything changed. Backends keep their order and fields;
// versions at 0 stay listed at weight 0; a version that gets traffic and
// is not listed is appended with the port of the rule's first backendRef.
// obj is never modified.
func setWeights(obj *unstructured.Unstructured, names []string, weights []v1alpha1.SubsetWeight) (*unstructured.Unstructured, bool, error) {
	want := map[string]int32{}
	var sum int32
	for _, w := range weights {
		if w.Weight < 0 || w.Weight > 100 {
			return nil, false, fmt.Errorf("weight of version %q is %d: weights are percentages from 0 to 100", w.Subset, w.Weight)
		}
		if _, dup := want[w.Subset]; dup {
			return nil, false, fmt.Errorf("version %q appears twice in the desired weights", w.Subset)
		}
		want[w.Subset] = w.Weight
		sum += w.Weight
	}
	if sum != 100 {
		return nil, false, fmt.Errorf("desired weights sum to %d: give percentages that sum to 100", sum)
	}
	out := obj.DeepCopy()
	rules, err := resolveRules(out, names)
	if err != nil {
		return nil, false, err
	}
	for _, r := range rules {
		bs, err := backends(out, r)
		if err != nil {
			return nil, false, err
		}
		listed := map[string]bool{}
		for _, b := range bs {
			listed[b.service] = true
		}
		list := r.obj["backendRefs"].([]any)
		for _, w := range weights {
			if w.Weight > 0 && !listed[w.Subset] {
				ref := map[string]any{"name": w.Subset, "weight": int64(w.Weight)}
				if p, ok := bs[0].obj["port"]; ok {
					ref["port"] = runtime.DeepCopyJSONValue(p)
				}
				list = append(list, ref)
			}
		}
		for _, b := range bs {
			// A lone backend without a weight already gets everything;
			// leave it unwritten so a no-op stays a no-op.
			if _, has := b.obj["weight"]; !has && len(list) == 1 && want[b.service] == 100 {
				continue
			}
			b.obj["weight"] = int64(want[b.service])
		}
		r.obj["backendRefs"] = list
	}
	changed := !equalJSON(obj.Object, out.Object)
	return out, changed, nil
}

// equalJSON compares two objects as the API server would store them (an
// int64 written and a float64 decoded compare equal).
func equalJSON(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
