package dataplane

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// httpRouteFromYAML parses an HTTPRoute manifest (namespace ml unless set)
// as the API server would serve it, except that defaults are not applied:
// the stand-in must apply them itself.
func httpRouteFromYAML(t testing.TB, doc string) *gatewayv1.HTTPRoute {
	t.Helper()
	var o gatewayv1.HTTPRoute
	if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
		t.Fatalf("parse HTTPRoute: %v", err)
	}
	if o.Namespace == "" {
		o.Namespace = "ml"
	}
	return &o
}

func grpcRouteFromYAML(t testing.TB, doc string) *gatewayv1.GRPCRoute {
	t.Helper()
	var o gatewayv1.GRPCRoute
	if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
		t.Fatalf("parse GRPCRoute: %v", err)
	}
	if o.Namespace == "" {
		o.Namespace = "ml"
	}
	return &o
}

// gammaWorld is fraudWorld laid out the Gateway API way: besides the front
// Service fraud (every version), one Service per version (fraud-v1 selects
// version v1, ...), and the given HTTPRoutes. No VirtualService.
func gammaWorld(t testing.TB, routeDocs ...string) Snapshot {
	s := fraudWorld(t)
	for _, v := range []string{"v1", "v2", "v3"} {
		s.Services = append(s.Services, service("ml", "fraud-"+v, map[string]string{"app": "fraud", "version": v}))
	}
	for _, d := range routeDocs {
		s.HTTPRoutes = append(s.HTTPRoutes, httpRouteFromYAML(t, d))
	}
	return s
}

// withService adds a Service to a snapshot.
func withService(s Snapshot, svc *corev1.Service) Snapshot {
	s.Services = append(s.Services, svc)
	return s
}

// meshRoute is the head of an HTTPRoute named name attached to the Service
// fraud in ml, for fixtures to add rules to.
func meshRoute(name string) string {
	return "metadata: {name: " + name + "}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: fraud}]\n"
}
