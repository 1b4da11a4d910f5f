package istio

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// RouteKeys resolves the routes a rollout names (routes; empty means the
// VirtualService's only HTTP route) to their keys, as ReadWeights keys them.
// Names that do not resolve are returned as they are, so that two rollouts
// naming one missing route still collide.
func RouteKeys(vs *unstructured.Unstructured, routes []string) []string {
	if len(routes) > 0 {
		return append([]string(nil), routes...)
	}
	rs, err := managedRoutes(vs, Target{})
	if err != nil {
		return nil
	}
	keys := make([]string, len(rs))
	for i, r := range rs {
		keys[i] = r.key
	}
	return keys
}
