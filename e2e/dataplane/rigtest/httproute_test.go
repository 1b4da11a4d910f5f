package rigtest

import (
	"context"
	"maps"
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/fulcrum-ml/fulcrum/e2e/dataplane"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
)

// followWithin bounds how long the proxy may take to route by an updated
// HTTPRoute: one watch event and a table rebuild, well under a second on
// an idle machine.
const followWithin = 10 * time.Second

// The Gateway API layout: one Service per version (fraud-v1, fraud-v2) and
// an HTTPRoute attached to the front Service fraud splitting between them.
func TestHTTPRouteWeightsSteerTrafficAndMetrics(t *testing.T) {
	if env == nil {
		t.Skip("needs the local environment (not under -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Given Services fraud, fraud-v1 and fraud-v2, a Deployment per version
	// whose pods name their model server, and an HTTPRoute at 80/20.
	r := newGatewayRig(ctx, t)
	rv := r.createRoute(ctx, t, 80, 20)
	r.waitRoute(ctx, t, rv)
	r.waitBackends(ctx, t)

	// When load runs, the split follows the weights.
	before := r.load(ctx, t, 2000)
	if sd := math.Sqrt(0.2 * 0.8 / 2000); math.Abs(before.Share("v2")-0.2) > 4*sd || before.Completed != 2000 {
		t.Fatalf("at 80/20: %s, want v2 at 20%% ± %.1f%%", before, 400*sd)
	}

	// When the route moves to 0/100, the proxy follows within the bound
	// and v2 serves everything.
	updated := time.Now()
	rv = r.setWeights(ctx, t, 0, 100)
	r.waitRoute(ctx, t, rv)
	t.Logf("proxy routed by the updated HTTPRoute %s after the update", time.Since(updated).Round(time.Millisecond))
	after := r.load(ctx, t, 300)
	if after.ByVersion["v2"] != 300 {
		t.Fatalf("at 0/100: %s, want every request on v2", after)
	}

	// Then Prometheus sees per-version series by destination_service_name,
	// as ambient waypoints report them.
	want := map[string]int{"fraud-v1": before.ByVersion["v1"], "fraud-v2": before.ByVersion["v2"] + after.ByVersion["v2"]}
	q := `sum by (destination_service_name) (istio_requests_total{reporter="destination",destination_service_name=~"fraud-v1|fraud-v2",destination_service_namespace="` + r.ns + `"})`
	var got map[string]int
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got = promSumBy(ctx, t, "destination_service_name", q)
		return maps.Equal(got, want), nil
	})
	if err != nil {
		t.Fatalf("Prometheus %s = %v, want %v", q, got, want)
	}
}

// gatewayRig is rig with a Service per version and an HTTPRoute instead of
// subsets and a VirtualService.
type gatewayRig struct {
	rig
	gw gatewayclient.Interface
}

func newGatewayRig(ctx context.Context, t *testing.T) *gatewayRig {
	t.Helper()
	ns, err := env.CreateNamespace(ctx, "gwapi")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gatewayclient.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := &gatewayRig{rig: rig{ns: ns, host: "fraud." + ns + ".svc.cluster.local", servers: map[string]*modelserver.Running{}}, gw: gw}
	for i, v := range []string{"v1", "v2"} {
		s, err := modelserver.Start(ctx, modelserver.Config{Model: "fraud", Version: v, Seed: uint64(i + 1)}, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		r.servers[v] = s
	}
	r.proxy, err = dataplane.Start(ctx, dataplane.StartConfig{
		Proxy:     dataplane.Config{Namespace: ns, Seed: 42},
		Rest:      env.Config,
		Watch:     dataplane.WatchConfig{Namespace: ns},
		Listeners: []dataplane.Listener{{Addr: "127.0.0.1:0", Host: r.host}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.proxy.Stop)
	if err := env.Prometheus.Rewrite(promserver.Config{Targets: []string{r.proxy.MetricsAddr}, ScrapeInterval: time.Second}); err != nil {
		t.Fatal(err)
	}
	services := map[string]map[string]string{
		"fraud":    {"app": "fraud"},
		"fraud-v1": {"app": "fraud", "version": "v1"},
		"fraud-v2": {"app": "fraud", "version": "v2"},
	}
	for name, sel := range services {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}
		if _, err := env.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for v, s := range r.servers {
		if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, deployment(ns, v, s.Addr), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *gatewayRig) createRoute(ctx context.Context, t *testing.T, w1, w2 int32) string {
	t.Helper()
	backend := func(name string, w int32) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To[gatewayv1.PortNumber](80)},
			Weight:                 ptr.To(w),
		}}
	}
	hr := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: r.ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptr.To[gatewayv1.Group](""), Kind: ptr.To[gatewayv1.Kind]("Service"), Name: "fraud",
			}}},
			Rules: []gatewayv1.HTTPRouteRule{{
				Name:        ptr.To[gatewayv1.SectionName]("predict"),
				BackendRefs: []gatewayv1.HTTPBackendRef{backend("fraud-v1", w1), backend("fraud-v2", w2)},
			}},
		},
	}
	created, err := r.gw.GatewayV1().HTTPRoutes(r.ns).Create(ctx, hr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created.ResourceVersion
}

func (r *gatewayRig) setWeights(ctx context.Context, t *testing.T, w1, w2 int32) string {
	t.Helper()
	var rv string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		hr, err := r.gw.GatewayV1().HTTPRoutes(r.ns).Get(ctx, "fraud", metav1.GetOptions{})
		if err != nil {
			return err
		}
		hr = hr.DeepCopy()
		hr.Spec.Rules[0].BackendRefs[0].Weight, hr.Spec.Rules[0].BackendRefs[1].Weight = ptr.To(w1), ptr.To(w2)
		out, err := r.gw.GatewayV1().HTTPRoutes(r.ns).Update(ctx, hr, metav1.UpdateOptions{})
		if err == nil {
			rv = out.ResourceVersion
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

// waitRoute waits, at most followWithin, until the proxy routes by the
// HTTPRoute at resourceVersion rv.
func (r *gatewayRig) waitRoute(ctx context.Context, t *testing.T, rv string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, followWithin, true, func(context.Context) (bool, error) {
		v, _ := r.proxy.Table().RouteVersion(dataplane.KindHTTPRoute, r.ns, "fraud")
		return v == rv, nil
	})
	if err != nil {
		t.Fatalf("proxy did not see HTTPRoute %s/fraud at resourceVersion %s within %s (problems: %v)", r.ns, rv, followWithin, r.proxy.Table().Problems)
	}
}

// waitBackends waits until each version's Service has its Ready pod.
func (r *gatewayRig) waitBackends(ctx context.Context, t *testing.T) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for v, s := range r.servers {
			bs := r.proxy.Table().Backends("fraud-"+v+"."+r.ns+".svc.cluster.local", "")
			if len(bs) != 1 || bs[0].Addr != s.Addr || bs[0].Version != v {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("pods never became Ready backends of fraud-v1 and fraud-v2 (problems: %v)", r.proxy.Table().Problems)
	}
}
