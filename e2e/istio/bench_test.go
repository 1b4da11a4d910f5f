package istio_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/istio/xdsload"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	router "github.com/fulcrum-ml/fulcrum/router/istio"
)

// BenchmarkWriteToClients measures what a weight write costs on real
// Istio: each iteration writes the VirtualService with Fulcrum's router
// (v2 alternating between 10% and 90%) and records the time from the write
// to the RouteConfiguration an Envoy sidecar receives, the time to the
// switch in the split gRPC's proxyless clients observe (at 200 requests/s,
// the most likely change point), and istiod's xDS pushes (every type, to
// the two connected clients). Run it with a fixed count:
//
//	go test -run '^$' -bench WriteToClients -benchtime 20x ./
func BenchmarkWriteToClients(b *testing.B) {
	if testing.Short() {
		b.Skip("needs the local environment and istiod")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	m := newGRPCModel(ctx, b, map[string]modelserver.Behavior{"v1": {}, "v2": {}})
	load, err := xdsload.Start(ctx, xdsload.Config{XDSAddr: istio.XDSAddr, Namespace: m.ns, Host: m.host, Port: 80,
		Model: "model", ModelNamespace: m.ns, Rate: 200, Duration: 25 * time.Minute, Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer load.Stop()
	watch, err := istio.WatchSidecarRoute(ctx, m.ns, "80")
	if err != nil {
		b.Fatal(err)
	}
	defer watch.Close()
	dyn := dynamic.NewForConfigOrDie(kube.Config).Resource(vsGVR).Namespace(m.ns)
	drU, err := dynamic.NewForConfigOrDie(kube.Config).Resource(drGVR).Namespace(m.ns).Get(ctx, "model", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	dr, err := router.DecodeDestinationRule(drU)
	if err != nil {
		b.Fatal(err)
	}
	sleep(ctx, 3*time.Second) // the clients are connected and answered
	var toEnvoy, toClients []time.Duration
	var pushes []float64
	prev := map[string]float64{"v1": 1}
	b.ResetTimer()
	for i := range b.N {
		step := int32(10)
		if i%2 == 1 {
			step = 90
		}
		cur, err := dyn.Get(ctx, "model-vs", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		next, _, err := router.SetWeights(cur, router.Target{Routes: []string{"predict"}, DestinationRule: dr},
			[]v1alpha1.SubsetWeight{{Subset: "v1", Weight: 100 - step}, {Subset: "v2", Weight: step}})
		if err != nil {
			b.Fatal(err)
		}
		before, err := istio.Pushes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		written := time.Now()
		if _, err := dyn.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		want := map[string]float64{"v1": float64(100-step) / 100, "v2": float64(step) / 100}
		p := waitWeights(ctx, b, watch, m.host, m.host, "predict", map[string]uint32{"v1": uint32(100 - step), "v2": uint32(step)})
		sleep(ctx, 2500*time.Millisecond)
		after, err := istio.Pushes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		toEnvoy = append(toEnvoy, p.At.Sub(written))
		toClients = append(toClients, changePoint(load.Answers(written), prev, want).Sub(written))
		pushes = append(pushes, after-before)
		prev = want
	}
	b.StopTimer()
	report := func(ds []time.Duration, unit string) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, unit+"-p50-ms")
		b.ReportMetric(float64(ds[min(len(ds)-1, int(0.99*float64(len(ds))))].Microseconds())/1000, unit+"-p99-ms")
	}
	report(toEnvoy, "envoy")
	report(toClients, "clients")
	slices.Sort(pushes)
	b.ReportMetric(pushes[len(pushes)/2], "pushes-p50/write")
	b.ReportMetric(pushes[len(pushes)-1], "pushes-max/write")
	b.ReportMetric(0, "ns/op")
	if r := load.Refused(); len(r) > 0 {
		b.Fatalf("the clients tried to dial non-loopback addresses %q", r)
	}
}
