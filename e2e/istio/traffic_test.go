package istio_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/istio/grpcmodel"
	"github.com/fulcrum-ml/fulcrum/e2e/istio/xdsload"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	router "github.com/fulcrum-ml/fulcrum/router/istio"
)

var (
	vsGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	weGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"}
)

// grpcModel is a model served over gRPC on loopback: one model server and
// gRPC front per version, each a WorkloadEntry (127.0.0.1, its own port,
// labels app and version) selected by the model's Service, so istiod's
// endpoints for the Service are these loopback addresses only.
type grpcModel struct {
	ns, host string
	servers  map[string]*modelserver.Running
}

func newGRPCModel(ctx context.Context, t testing.TB, versions map[string]modelserver.Behavior) *grpcModel {
	t.Helper()
	ns, err := kube.CreateNamespace(ctx, "istio-grpc")
	if err != nil {
		t.Fatal(err)
	}
	m := &grpcModel{ns: ns, host: "model." + ns + ".svc.cluster.local", servers: map[string]*modelserver.Running{}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "model", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "model"}, Ports: []corev1.ServicePort{{Name: "grpc", Port: 80}}}}
	if _, err := kube.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(kube.Config)
	subsets := ""
	names := slices.Sorted(func(yield func(string) bool) {
		for v := range versions {
			if !yield(v) {
				return
			}
		}
	})
	for i, v := range names {
		srv, err := modelserver.Start(ctx, modelserver.Config{Model: "model", Version: v, Seed: uint64(i + 1), Behavior: versions[v]}, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		m.servers[v] = srv
		front, err := grpcmodel.Start(ctx, grpcmodel.Config{Model: "model", Namespace: ns, Version: v, Server: srv})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(front.Stop)
		_, port, _ := splitPort(front.Addr)
		we := decode(t, fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: model-%s, namespace: %s}
spec:
  address: 127.0.0.1
  ports: {grpc: %d}
  labels: {app: model, version: %s}
`, v, ns, port, v))
		if _, err := dyn.Resource(weGVR).Namespace(ns).Create(ctx, we, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		subsets += fmt.Sprintf("    - {name: %s, labels: {version: %s}}\n", v, v)
	}
	dr := decode(t, fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: model, namespace: %s}\nspec:\n  host: model\n  subsets:\n%s", ns, subsets))
	if _, err := dyn.Resource(drGVR).Namespace(ns).Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(vsGVR).Namespace(ns).Create(ctx, decode(t, fmt.Sprintf(namedVS, "v1", ns)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return m
}

func splitPort(addr string) (string, int, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			p, err := strconv.Atoi(addr[i+1:])
			return addr[:i], p, err
		}
	}
	return "", 0, fmt.Errorf("no port in %q", addr)
}

// TestProxylessClientsFollowWeights sends requests through gRPC's proxyless
// xDS client, bootstrapped against istiod, while Fulcrum's router moves the
// weights: after each write the split the clients observe follows the new
// weights (a chi-square test at α=0.001 on 5 s of answers), the switch
// comes within seconds of the write, a rollback to 0 leaves the candidate
// no answer at all, and every address a client dialed is on loopback.
func TestProxylessClientsFollowWeights(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m := newGRPCModel(ctx, t, map[string]modelserver.Behavior{"v1": {}, "v2": {}})
	load, err := xdsload.Start(ctx, xdsload.Config{XDSAddr: istio.XDSAddr, Namespace: m.ns, Host: m.host, Port: 80,
		Model: "model", ModelNamespace: m.ns, Rate: 200, Duration: 3 * time.Minute, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer load.Stop()
	waitAnswers(ctx, t, load, "v1")

	dyn := dynamic.NewForConfigOrDie(kube.Config).Resource(vsGVR).Namespace(m.ns)
	dr := destinationRule(ctx, t, m.ns)
	prev := map[string]float64{"v1": 1}
	var lags []time.Duration
	for _, step := range []int32{20, 50, 80, 0} {
		cur, err := dyn.Get(ctx, "model-vs", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		next, _, err := router.SetWeights(cur, router.Target{Routes: []string{"predict"}, DestinationRule: dr},
			[]v1alpha1.SubsetWeight{{Subset: "v1", Weight: 100 - step}, {Subset: "v2", Weight: step}})
		if err != nil {
			t.Fatal(err)
		}
		written := time.Now()
		if _, err := dyn.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"v1": float64(100-step) / 100, "v2": float64(step) / 100}
		sleep(ctx, 8*time.Second)
		answers := load.Answers(written)
		switchAt := changePoint(answers, prev, want)
		lag := switchAt.Sub(written)
		lags = append(lags, lag)
		after := window(answers, switchAt.Add(500*time.Millisecond), 5*time.Second)
		counts, failed := countVersions(after)
		chi := chiSquare(counts, want)
		t.Logf("v2=%d%%: clients switched %s after the write; next 5 s: %v (%d failed), chi-square %.2f", step, lag.Round(time.Millisecond), counts, failed, chi)
		if failed > 0 {
			t.Errorf("v2=%d%%: %d requests failed", step, failed)
		}
		if lag < 0 || lag > 5*time.Second {
			t.Errorf("v2=%d%%: the split changed %s after the write, want within 5 s", step, lag)
		}
		if step == 0 && counts["v2"] > 0 {
			t.Errorf("rolled back to v2=0, yet v2 answered %d requests after the switch", counts["v2"])
		}
		if chi > chiSquare001 {
			t.Errorf("v2=%d%%: answers %v do not follow the weights (chi-square %.2f > %.2f)", step, counts, chi, chiSquare001)
		}
		prev = want
	}
	if r := load.Refused(); len(r) > 0 {
		t.Errorf("the client tried to dial non-loopback addresses %q", r)
	}
	t.Logf("dialed %q; write-to-switch lags %v", load.Dialed(), lags)
}

// chiSquare001 is the chi-square critical value for 1 degree of freedom at
// α=0.001 (two versions).
const chiSquare001 = 10.83

// chiSquare is Pearson's statistic of counts against shares (versions with
// share 0 are left out: any answer from one fails the caller's own check).
func chiSquare(counts map[string]int, shares map[string]float64) float64 {
	n := 0
	for _, c := range counts {
		n += c
	}
	x := 0.0
	for v, p := range shares {
		if p == 0 {
			continue
		}
		e := p * float64(n)
		d := float64(counts[v]) - e
		x += d * d / e
	}
	return x
}

// changePoint is the time of the answer where the version mix most likely
// switched from the old shares to the new (the split maximising the
// likelihood of the answers before under old and after under new).
func changePoint(answers []xdsload.Answer, old, new map[string]float64) time.Time {
	logp := func(p float64) float64 { return math.Log(max(p, 1e-9)) }
	ll := 0.0 // everything under new
	for _, a := range answers {
		ll += logp(new[a.Version])
	}
	best, bestAt := ll, 0
	for i, a := range answers {
		ll += logp(old[a.Version]) - logp(new[a.Version])
		if ll > best {
			best, bestAt = ll, i+1
		}
	}
	if bestAt >= len(answers) {
		return answers[len(answers)-1].At
	}
	return answers[bestAt].At
}

func window(answers []xdsload.Answer, from time.Time, d time.Duration) []xdsload.Answer {
	var out []xdsload.Answer
	for _, a := range answers {
		if !a.At.Before(from) && a.At.Before(from.Add(d)) {
			out = append(out, a)
		}
	}
	return out
}

func countVersions(answers []xdsload.Answer) (map[string]int, int) {
	out, failed := map[string]int{}, 0
	for _, a := range answers {
		if a.Code != 0 {
			failed++
			continue
		}
		out[a.Version]++
	}
	return out, failed
}

// waitAnswers waits until the last second's answers all come from version.
func waitAnswers(ctx context.Context, t *testing.T, load *xdsload.Generator, version string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		a := load.Answers(time.Now().Add(-time.Second))
		c, failed := countVersions(a)
		if len(a) > 50 && failed == 0 && c[version] == len(a) {
			return
		}
		sleep(ctx, 200*time.Millisecond)
	}
	a := load.Answers(time.Now().Add(-time.Second))
	c, failed := countVersions(a)
	t.Fatalf("clients never got answers from %s only through istiod's xDS (last second: %v, %d failed; refused %q)", version, c, failed, load.Refused())
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
