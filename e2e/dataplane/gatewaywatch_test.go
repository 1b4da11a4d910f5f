package dataplane

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
)

// Watch follows only the route kinds the API server serves, so a cluster
// without the Gateway API CRDs (or with HTTPRoute alone) still syncs.
func TestGatewayWatchFollowsServedKinds(t *testing.T) {
	cases := map[string]struct {
		served             []string
		http, grpc         bool
		informers, missing int
	}{
		"group not served": {nil, false, false, 0, 2},
		"HTTPRoute only":   {[]string{"httproutes", "gateways"}, true, false, 1, 1},
		"both":             {[]string{"httproutes", "grpcroutes"}, true, true, 2, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dc := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
			if tc.served != nil {
				list := &metav1.APIResourceList{GroupVersion: "gateway.networking.k8s.io/v1"}
				for _, r := range tc.served {
					list.APIResources = append(list.APIResources, metav1.APIResource{Name: r})
				}
				dc.Resources = []*metav1.APIResourceList{list}
			}
			g, err := newGatewayWatch(&rest.Config{Host: "https://127.0.0.1:1"}, dc, "ml")
			if err != nil {
				t.Fatal(err)
			}
			if (g.httpRoutes != nil) != tc.http || (g.grpcRoutes != nil) != tc.grpc || len(g.informers) != tc.informers || len(g.missing) != tc.missing {
				t.Errorf("watches HTTPRoutes %v, GRPCRoutes %v with %d informers, missing %v; want %v, %v, %d and %d missing",
					g.httpRoutes != nil, g.grpcRoutes != nil, len(g.informers), g.missing, tc.http, tc.grpc, tc.informers, tc.missing)
			}
			if hrs, grs, err := g.list(); err != nil || len(hrs)+len(grs) != 0 {
				t.Errorf("list before any sync = %d, %d, %v; want nothing and no error", len(hrs), len(grs), err)
			}
		})
	}
}
