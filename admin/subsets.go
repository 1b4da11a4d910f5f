package admin

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// istioGVK is an Istio networking kind at version ("v1" when empty): the
// cluster may serve only v1beta1 or v1alpha3 (the controller detects which,
// controller.DetectIstioVersion); every version has the same schema.
func istioGVK(version, kind string) schema.GroupVersionKind {
	if version == "" {
		version = "v1"
	}
	return schema.GroupVersionKind{Group: "networking.istio.io", Version: version, Kind: kind}
}

// DestinationRuleSubsets reads a DestinationRule as unstructured data, so
// the admin API needs no Istio types in its scheme, and returns its subset
// names. NotFound errors pass through unwrapped-compatible (%w).
type DestinationRuleSubsets struct {
	Reader client.Reader
	// Version of networking.istio.io to read ("v1" when empty).
	Version string
}

// Subsets implements SubsetLookup.
func (d DestinationRuleSubsets) Subsets(ctx context.Context, namespace, name string) ([]string, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(istioGVK(d.Version, "DestinationRule"))
	if err := d.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u); err != nil {
		return nil, fmt.Errorf("get DestinationRule %s/%s: %w", namespace, name, err)
	}
	raw, _, err := unstructured.NestedSlice(u.Object, "spec", "subsets")
	if err != nil {
		return nil, fmt.Errorf("DestinationRule %s/%s: spec.subsets: %w", namespace, name, err)
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		if m, ok := s.(map[string]any); ok {
			if n, ok := m["name"].(string); ok && n != "" {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// offStable reports whether a managed route of the rollout's VirtualService
// sends any weight to a subset other than spec.stable right now. It is asked
// only when status says there is nothing to roll back; a read that fails
// answers false, leaving the table's answer in place.
func offStable(ctx context.Context, r client.Reader, version string, mr *v1alpha1.ModelRollout) bool {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(istioGVK(version, "VirtualService"))
	if err := r.Get(ctx, types.NamespacedName{Namespace: mr.Namespace, Name: mr.Spec.VirtualService.Name}, u); err != nil {
		return false
	}
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
	for i, rt := range routes {
		m, _ := rt.(map[string]any)
		name, _ := m["name"].(string)
		managed := len(mr.Spec.VirtualService.Routes) == 0 && len(routes) == 1 && i == 0
		for _, n := range mr.Spec.VirtualService.Routes {
			managed = managed || (n == name && name != "")
		}
		if !managed {
			continue
		}
		dests, _ := m["route"].([]any)
		for _, d := range dests {
			dm, _ := d.(map[string]any)
			dest, _ := dm["destination"].(map[string]any)
			subset, _ := dest["subset"].(string)
			w, hasWeight := dm["weight"]
			weighted := (len(dests) == 1 && !hasWeight) || weightOf(w) > 0
			if weighted && subset != mr.Spec.Stable {
				return true
			}
		}
	}
	return false
}

func weightOf(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}
