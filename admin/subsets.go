package admin

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DestinationRuleGVK is the Istio DestinationRule version read for subsets.
var DestinationRuleGVK = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"}

// DestinationRuleSubsets reads a DestinationRule as unstructured data, so
// the admin API needs no Istio types in its scheme, and returns its subset
// names. NotFound errors pass through unwrapped-compatible (%w).
type DestinationRuleSubsets struct {
	Reader client.Reader
}

// Subsets implements SubsetLookup.
func (d DestinationRuleSubsets) Subsets(ctx context.Context, namespace, name string) ([]string, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(DestinationRuleGVK)
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
