package istio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/istio/istiod"
	router "github.com/fulcrum-ml/fulcrum/router/istio"
)

// TestWeightsReachEnvoyRoutes writes each canary step with Fulcrum's router
// through every served networking.istio.io version, and checks the
// RouteConfiguration istiod pushes to an Envoy sidecar after each write:
// the route's weighted_clusters carry the subsets' clusters with the
// weights written. It starts from the origin example (an unnamed 70/30
// route, ../shared/DESIGN.md) and from a named route at 100/0.
func TestWeightsReachEnvoyRoutes(t *testing.T) {
	skipShort(t)
	cases := []struct {
		version, vs string
		route       string // the Envoy route's name
		start       map[string]uint32
	}{
		{"v1alpha3", originVS, "", map[string]uint32{"v1": 70, "v2": 30}},
		{"v1beta1", namedVS, "predict", map[string]uint32{"v1": 100}},
		{"v1", namedVS, "predict", map[string]uint32{"v1": 100}},
	}
	for _, c := range cases {
		t.Run(c.version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			ns := newModel(ctx, t)
			dyn := dynamic.NewForConfigOrDie(kube.Config)
			vsAPI := dyn.Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: c.version, Resource: "virtualservices"}).Namespace(ns)
			obj := decode(t, fmt.Sprintf(c.vs, c.version, ns))
			if _, err := vsAPI.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create VirtualService through %s: %v", c.version, err)
			}
			host := routeHost(obj, ns)
			watch, err := istio.WatchSidecarRoute(ctx, ns, "80")
			if err != nil {
				t.Fatal(err)
			}
			defer watch.Close()
			service := "model." + ns + ".svc.cluster.local"
			waitWeights(ctx, t, watch, host, service, c.route, c.start)

			dr := destinationRule(ctx, t, ns)
			var routes []string
			if c.route != "" {
				routes = []string{c.route}
			}
			for _, step := range []int32{10, 50, 100, 0} {
				cur, err := vsAPI.Get(ctx, "model-vs", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				next, changed, err := router.SetWeights(cur, router.Target{Routes: routes, DestinationRule: dr},
					[]v1alpha1.SubsetWeight{{Subset: "v1", Weight: 100 - step}, {Subset: "v2", Weight: step}})
				if err != nil || !changed {
					t.Fatalf("SetWeights to v2=%d: changed=%v err=%v", step, changed, err)
				}
				written := time.Now()
				if _, err := vsAPI.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
					t.Fatalf("write v2=%d through %s (istiod's webhook validates it): %v", step, c.version, err)
				}
				want := map[string]uint32{}
				if step < 100 {
					want["v1"] = uint32(100 - step)
				}
				if step > 0 {
					want["v2"] = uint32(step)
				}
				p := waitWeights(ctx, t, watch, host, service, c.route, want)
				t.Logf("v2=%d%%: in Envoy's route %s after the write", step, p.At.Sub(written).Round(time.Millisecond))
			}
		})
	}
}

// originVS is the article's A/B split as its users wrote it (apiVersion and
// namespace filled in).
const originVS = `
apiVersion: networking.istio.io/%s
kind: VirtualService
metadata: {name: model-vs, namespace: %s}
spec:
  hosts: [model.example.com]
  http:
    - route:
        - destination: {host: model, subset: v1}
          weight: 70
        - destination: {host: model, subset: v2}
          weight: 30
`

const namedVS = `
apiVersion: networking.istio.io/%s
kind: VirtualService
metadata: {name: model-vs, namespace: %s}
spec:
  hosts: [model]
  http:
    - name: predict
      route:
        - destination: {host: model, subset: v1}
          weight: 100
        - destination: {host: model, subset: v2}
          weight: 0
`

// newModel creates a namespace with the model's Service (port 80) and its
// DestinationRule (subsets v1, v2).
func newModel(ctx context.Context, t *testing.T) string {
	t.Helper()
	ns, err := kube.CreateNamespace(ctx, "istio")
	if err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "model", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "model"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := kube.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dr := decode(t, fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: model, namespace: %s}
spec:
  host: model
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
`, ns))
	dyn := dynamic.NewForConfigOrDie(kube.Config)
	if _, err := dyn.Resource(drGVR).Namespace(ns).Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

var drGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}

func destinationRule(ctx context.Context, t *testing.T, ns string) *networkingv1.DestinationRule {
	t.Helper()
	u, err := dynamic.NewForConfigOrDie(kube.Config).Resource(drGVR).Namespace(ns).Get(ctx, "model", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dr, err := router.DecodeDestinationRule(u)
	if err != nil {
		t.Fatal(err)
	}
	return dr
}

// routeHost is the Envoy virtual host domain of the VirtualService's first
// host: a short name is the Service's FQDN.
func routeHost(vs *unstructured.Unstructured, ns string) string {
	hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	if !strings.Contains(hosts[0], ".") {
		return hosts[0] + "." + ns + ".svc.cluster.local"
	}
	return hosts[0]
}

func waitWeights(ctx context.Context, t testing.TB, w *istiod.RouteWatch, domain, service, route string, want map[string]uint32) istiod.Push {
	t.Helper()
	var last string
	p, err := w.WaitFor(ctx, 30*time.Second, func(rc *routev3.RouteConfiguration) bool {
		got, err := istiod.Weights(rc, domain, service, route)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprint(got)
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
	if err != nil {
		t.Fatalf("Envoy's route for %s never carried %v (last: %s): %v", domain, want, last, err)
	}
	return p
}

func decode(t testing.TB, y string) *unstructured.Unstructured {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(raw, &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}
