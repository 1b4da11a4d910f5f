package rigtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/dataplane"
	"github.com/fulcrum-ml/fulcrum/e2e/loadgen"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/e2e/modelserver"
	"github.com/fulcrum-ml/fulcrum/e2e/promserver"
	networking "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

var env *localenv.Env

func TestMain(m *testing.M) { os.Exit(localenv.Main(m, localenv.Options{}, &env)) }

// rig is one model with two versions behind the proxy.
type rig struct {
	ns      string
	host    string // FQDN
	istio   istioclient.Interface
	proxy   *dataplane.Running
	servers map[string]*modelserver.Running
}

func TestWeightsSteerTrafficAndMetrics(t *testing.T) {
	if env == nil {
		t.Skip("needs the local environment (not under -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Given two model versions, a Service, DestinationRule, VirtualService
	// at 100/0 and one Deployment per version whose pods name their server.
	r := newRig(ctx, t)
	r.waitBackends(ctx, t, "v1", "v2")

	// When load runs at 100/0, v1 serves everything.
	before := r.load(ctx, t, 300)
	if before.ByVersion["v1"] != 300 {
		t.Fatalf("at 100/0: %s, want every request on v1", before)
	}

	// When the weights change to 70/30, the observed split follows.
	rv := r.setWeights(ctx, t, 70, 30)
	r.waitVersion(ctx, t, rv)
	after := r.load(ctx, t, 3000)
	share := after.Share("v2")
	if sd := math.Sqrt(0.3 * 0.7 / 3000); math.Abs(share-0.3) > 4*sd || after.Completed != 3000 {
		t.Fatalf("at 70/30: %s, want v2 at 30%% ± %.1f%%", after, 400*sd)
	}

	// And a proxy reading networking.istio.io/v1beta1 routes by the same
	// object the v1 client wrote.
	old, err := dataplane.Start(ctx, dataplane.StartConfig{
		Proxy: dataplane.Config{Namespace: r.ns, Seed: 7},
		Rest:  env.Config,
		Watch: dataplane.WatchConfig{Namespace: r.ns, APIVersion: "v1beta1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Stop()
	if v, _ := old.Table().VirtualServiceVersion(r.ns, "fraud"); v != rv {
		t.Errorf("v1beta1 proxy sees VirtualService at resourceVersion %q, want %q", v, rv)
	}
	if bs := old.Table().Backends(r.host, "v2"); len(bs) != 1 {
		t.Errorf("v1beta1 proxy has %d v2 backends, want 1", len(bs))
	}

	// Then Prometheus, scraping the proxy, sees the same counts by
	// destination_version.
	want := map[string]int{"v1": before.ByVersion["v1"] + after.ByVersion["v1"], "v2": after.ByVersion["v2"]}
	r.waitProm(ctx, t, "destination_version", `sum by (destination_version) (istio_requests_total{reporter="destination",destination_service_name="fraud",destination_service_namespace="`+r.ns+`"})`, want)
	// And the model servers' score histograms count one score per answer,
	// under the labels the drift template selects.
	r.waitProm(ctx, t, "version", `sum by (version) (model_prediction_score_count{namespace="`+r.ns+`",model="fraud"})`, want)
}

func (r *rig) waitProm(ctx context.Context, t *testing.T, label, q string, want map[string]int) {
	t.Helper()
	var got map[string]int
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got = promSumBy(ctx, t, label, q)
		return len(got) == len(want) && got["v1"] == want["v1"] && got["v2"] == want["v2"], nil
	})
	if err != nil {
		t.Fatalf("Prometheus %s = %v, want %v", q, got, want)
	}
}

func newRig(ctx context.Context, t *testing.T) *rig {
	t.Helper()
	ns, err := env.CreateNamespace(ctx, "rig")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := istioclient.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{ns: ns, host: "fraud." + ns + ".svc.cluster.local", istio: ic, servers: map[string]*modelserver.Running{}}
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
	if err := env.Prometheus.Rewrite(promserver.Config{
		Targets:            []string{r.proxy.MetricsAddr},
		ExtraScrapeConfigs: modelserver.ScrapeConfig("models", ns, time.Second, r.servers["v1"].Addr, r.servers["v2"].Addr),
		ScrapeInterval:     time.Second,
	}); err != nil {
		t.Fatal(err)
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "fraud"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if _, err := env.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for v, s := range r.servers {
		if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, deployment(ns, v, s.Addr), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dr := &istionetv1.DestinationRule{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: ns},
		Spec: networking.DestinationRule{Host: "fraud", Subsets: []*networking.Subset{
			{Name: "v1", Labels: map[string]string{"version": "v1"}},
			{Name: "v2", Labels: map[string]string{"version": "v2"}},
		}},
	}
	if _, err := ic.NetworkingV1().DestinationRules(ns).Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vs := &istionetv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: ns},
		Spec: networking.VirtualService{Hosts: []string{"fraud"}, Http: []*networking.HTTPRoute{{
			Name: "predict",
			Route: []*networking.HTTPRouteDestination{
				{Destination: &networking.Destination{Host: "fraud", Subset: "v1"}, Weight: 100},
				{Destination: &networking.Destination{Host: "fraud", Subset: "v2"}, Weight: 0},
			},
		}}},
	}
	created, err := ic.NetworkingV1().VirtualServices(ns).Create(ctx, vs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.waitVersion(ctx, t, created.ResourceVersion)
	return r
}

// deployment runs one version; its pods carry the backend annotation that
// maps them to the local model server.
func deployment(ns, version, addr string) *appsv1.Deployment {
	lbl := map[string]string{"app": "fraud", "version": version}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud-" + version, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: map[string]string{dataplane.BackendAnnotation: addr}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "model", Image: "fulcrum-e2e/modelserver:" + version}}},
			},
		},
	}
}

func (r *rig) waitBackends(ctx context.Context, t *testing.T, subsets ...string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for _, s := range subsets {
			bs := r.proxy.Table().Backends(r.host, s)
			if len(bs) != 1 || bs[0].Addr != r.servers[s].Addr || bs[0].Workload != "fraud-"+s {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("pods of %v never became Ready backends of the proxy (problems: %v)", subsets, r.proxy.Table().Problems)
	}
}

func (r *rig) waitVersion(ctx context.Context, t *testing.T, rv string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		v, _ := r.proxy.Table().VirtualServiceVersion(r.ns, "fraud")
		return v == rv, nil
	})
	if err != nil {
		t.Fatalf("proxy never saw VirtualService %s/fraud at resourceVersion %s", r.ns, rv)
	}
}

func (r *rig) setWeights(ctx context.Context, t *testing.T, w1, w2 int32) string {
	t.Helper()
	var rv string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vs, err := r.istio.NetworkingV1().VirtualServices(r.ns).Get(ctx, "fraud", metav1.GetOptions{})
		if err != nil {
			return err
		}
		vs = vs.DeepCopy()
		vs.Spec.Http[0].Route[0].Weight, vs.Spec.Http[0].Route[1].Weight = w1, w2
		out, err := r.istio.NetworkingV1().VirtualServices(r.ns).Update(ctx, vs, metav1.UpdateOptions{})
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

func (r *rig) load(ctx context.Context, t *testing.T, n int) loadgen.Report {
	t.Helper()
	rep, err := loadgen.Run(ctx, loadgen.Config{
		URL: "http://" + r.proxy.Addrs[0] + "/v2/models/fraud/infer", Rate: 1000, MaxRequests: n, Duration: time.Minute, Seed: uint64(n),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors("") != 0 {
		t.Fatalf("load had errors: %s codes %v", rep, rep.ByCode)
	}
	return rep
}

// promSumBy runs an instant query and returns its values by label.
func promSumBy(ctx context.Context, t *testing.T, label, q string) map[string]int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.PrometheusURL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("query %s: status %q: %v", q, body.Status, err)
	}
	out := map[string]int{}
	for _, s := range body.Data.Result {
		f, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err != nil {
			t.Fatalf("value %v: %v", s.Value, err)
		}
		out[s.Metric[label]] = int(f)
	}
	return out
}
