package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// fixture is one model in its own namespace: Service, DestinationRule with
// subsets v1..v3, VirtualService, Ready pods for v1 and v2, and a rollout.
type fixture struct {
	t  testing.TB
	c  client.Client
	ns string
}

func newFixture(t *testing.T) *fixture { return newFixtureTB(t) }

func newFixtureTB(t testing.TB) *fixture {
	t.Helper()
	needEnv(t)
	cfg := *env.Config
	cfg.QPS, cfg.Burst = 200, 400
	c, err := client.New(&cfg, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := env.CreateNamespace(context.Background(), "mr")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, ns: ns}
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "fraud"}, Ports: []corev1.ServicePort{{Port: 80}}},
	})
	f.createDR()
	f.createVS("fraud")
	f.pod("fraud-v1", "v1")
	f.pod("fraud-v2", "v2")
	return f
}

func (f *fixture) ctx() context.Context { return context.Background() }

func (f *fixture) create(o client.Object) {
	f.t.Helper()
	if err := f.c.Create(f.ctx(), o); err != nil {
		f.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

func istioObj(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: kind})
	return u
}

func (f *fixture) createDR() {
	dr := istioObj("DestinationRule")
	dr.SetName("fraud")
	dr.SetNamespace(f.ns)
	dr.Object["spec"] = map[string]any{
		"host": fmt.Sprintf("fraud.%s.svc.cluster.local", f.ns),
		"subsets": []any{
			map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
			map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}},
			map[string]any{"name": "v3", "labels": map[string]any{"version": "v3"}},
		},
	}
	f.create(dr)
}

func (f *fixture) createVS(name string) {
	host := fmt.Sprintf("fraud.%s.svc.cluster.local", f.ns)
	vs := istioObj("VirtualService")
	vs.SetName(name)
	vs.SetNamespace(f.ns)
	vs.Object["spec"] = map[string]any{
		"hosts": []any{host},
		"http": []any{map[string]any{
			"name": "predict", "timeout": "2s",
			"retries": map[string]any{"attempts": int64(2), "perTryTimeout": "1s"},
			"route": []any{
				map[string]any{"destination": map[string]any{"host": host, "subset": "v1"}, "weight": int64(100)},
				map[string]any{"destination": map[string]any{"host": host, "subset": "v2"}, "weight": int64(0)},
			},
		}},
	}
	f.create(vs)
}

// pod creates a pod bound to the kwok node, which turns it Ready.
func (f *fixture) pod(name, version string) {
	f.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{"app": "fraud", "version": version}},
		Spec: corev1.PodSpec{
			NodeName:    env.NodeName,
			Containers:  []corev1.Container{{Name: "model", Image: "model:" + version}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	})
}

type rolloutOpt func(*v1alpha1.ModelRollout)

func (f *fixture) rollout(name string, opts ...rolloutOpt) *v1alpha1.ModelRollout {
	f.t.Helper()
	mr := &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService:  &v1alpha1.VirtualServiceRef{Name: name, Routes: []string{"predict"}},
			DestinationRule: "fraud", Stable: "v1", Candidate: "v2",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{
				Steps: []int32{10, 30, 60, 100}, MinStepDuration: metav1.Duration{Duration: time.Second},
			}},
		},
	}
	for _, o := range opts {
		o(mr)
	}
	f.create(mr)
	return mr
}

func (f *fixture) get(name string) *v1alpha1.ModelRollout {
	f.t.Helper()
	mr := &v1alpha1.ModelRollout{}
	if err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: name}, mr); err != nil {
		f.t.Fatal(err)
	}
	return mr
}

// update changes a rollout's spec with retry on conflict (the controller
// writes the same object).
func (f *fixture) update(name string, change func(*v1alpha1.ModelRollout)) {
	f.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mr := f.get(name)
		change(mr)
		return f.c.Update(f.ctx(), mr)
	})
	if err != nil {
		f.t.Fatalf("update %s: %v", name, err)
	}
}

func (f *fixture) intent(name, id string, a v1alpha1.IntentAction, w ...v1alpha1.SubsetWeight) {
	f.update(name, func(mr *v1alpha1.ModelRollout) {
		mr.Spec.Intent = &v1alpha1.Intent{ID: id, Action: a, Actor: "alice@example.com", Reason: "test " + id, Weights: w}
	})
}

func (f *fixture) vs(name string) *unstructured.Unstructured {
	f.t.Helper()
	vs := istioObj("VirtualService")
	if err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: name}, vs); err != nil {
		f.t.Fatal(err)
	}
	return vs
}

// weights reads the managed route's weights from the VirtualService.
func (f *fixture) weights(name string) map[string]int32 {
	f.t.Helper()
	dr := istioObj("DestinationRule")
	if err := f.c.Get(f.ctx(), types.NamespacedName{Namespace: f.ns, Name: "fraud"}, dr); err != nil {
		f.t.Fatal(err)
	}
	typed, err := istio.DecodeDestinationRule(dr)
	if err != nil {
		f.t.Fatal(err)
	}
	rw, err := istio.ReadWeights(f.vs(name), istio.Target{Routes: []string{"predict"}, DestinationRule: typed})
	if err != nil {
		f.t.Fatal(err)
	}
	return rw["predict"]
}

// eventually polls cond until it holds or the environment's timeout passes.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(timeout())
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.t.Fatalf("timed out after %s waiting for %s", timeout(), what)
}

func (f *fixture) waitPhase(name string, p v1alpha1.Phase) *v1alpha1.ModelRollout {
	f.t.Helper()
	var mr *v1alpha1.ModelRollout
	f.eventually(fmt.Sprintf("%s in phase %s", name, p), func() bool {
		mr = f.get(name)
		return mr.Status.Phase == p
	})
	return mr
}

func (f *fixture) waitWeights(name string, want map[string]int32) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("%s weights %v", name, want), func() bool {
		got := f.weights(name)
		return router.WeightsEqual(got, want)
	})
}

// eventReasons lists the reasons of events about a rollout.
func (f *fixture) eventReasons(name string) map[string]int {
	f.t.Helper()
	var list eventsv1.EventList
	if err := f.c.List(f.ctx(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "ModelRollout" {
			out[e.Reason]++
		}
	}
	return out
}

func historyTypes(mr *v1alpha1.ModelRollout) []string {
	var out []string
	for _, h := range mr.Status.History {
		out = append(out, h.Type)
	}
	return out
}
