// Package versions runs Fulcrum on clusters whose Istio serves only an
// older networking.istio.io version (v1beta1, or v1alpha3 as before Istio
// 1.5): the controller, the admin API and the webhook must all read and
// write the version the API server serves. Skipped under go test -short.
package versions

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Given an API server that serves networking.istio.io only at one older
// version, when a ModelRollout is created (admission by the webhook, which
// reads the VirtualService and DestinationRule) and an engineer starts,
// splits and rolls back through the admin API, then each action reaches the
// VirtualService, and a hand edit of the managed weights is denied by the
// webhook's guard.
func TestOlderIstioAPIs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts local environments")
	}
	ctrllog.SetLogger(logr.Discard())
	for _, version := range []string{"v1beta1", "v1alpha3"} {
		t.Run(version, func(t *testing.T) { onlyVersion(t, version) })
	}
}

func onlyVersion(t *testing.T, version string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	opts := rig.LocalenvOptions()
	opts.IstioVersions = []string{version}
	opts.SkipPrometheus = false
	kube, err := localenv.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer kube.Stop()
	env, err := rig.Setup(ctx, kube, kube.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var stack rig.Stack
	defer stack.Run()
	if _, err := kube.Client.Discovery().ServerResourcesForGroupVersion("networking.istio.io/v1"); err == nil {
		t.Fatal("the API server serves networking.istio.io/v1; the test needs it not to")
	}

	addr := rig.FreeAddr()
	if err := env.InstallWebhooks(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := env.StartFulcrum(ctx, &stack, rig.FulcrumConfig{Name: "webhook", Webhook: true, WebhookAddr: addr}); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitWebhook(ctx, time.Minute); err != nil {
		t.Fatalf("ModelRollout admission on networking.istio.io/%s only: %v", version, err)
	}
	ns, err := kube.CreateNamespace(ctx, "versions")
	if err != nil {
		t.Fatal(err)
	}
	f, err := env.StartFulcrum(ctx, &stack, rig.FulcrumConfig{Name: "fulcrum", Namespaces: []string{ns}, Controller: true, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(kube.Config)
	vsAPI := dyn.Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: version, Resource: "virtualservices"}).Namespace(ns)
	drAPI := dyn.Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: version, Resource: "destinationrules"}).Namespace(ns)
	model(ctx, t, kube, ns)
	for _, o := range []struct {
		api dynamic.ResourceInterface
		doc string
	}{{drAPI, drDoc}, {vsAPI, vsDoc}} {
		if _, err := o.api.Create(ctx, decode(t, fmt.Sprintf(o.doc, version, ns)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mr := (&rig.Model{NS: ns, Name: "fraud"}).NewRollout(rig.RolloutConfig{MinStepDuration: time.Hour, Metrics: []v1alpha1.Metric{}})
	if err := env.Client.Create(ctx, mr); err != nil {
		t.Fatalf("create the ModelRollout (admitted by the webhook): %v", err)
	}

	tok, err := kube.UserToken(rig.EngineerUser)
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{Server: f.AdminURL, Token: tok}
	steps := []struct {
		action string
		req    client.ActionRequest
		want   map[string]int64
	}{
		{"start", client.ActionRequest{Candidate: "v2", Reason: "canary"}, map[string]int64{"v1": 80, "v2": 20}},
		{"split", client.ActionRequest{Weights: []v1alpha1.SubsetWeight{{Subset: "v1", Weight: 70}, {Subset: "v2", Weight: 30}}, Reason: "A/B"}, map[string]int64{"v1": 70, "v2": 30}},
		{"rollback", client.ActionRequest{Reason: "done"}, map[string]int64{"v1": 100, "v2": 0}},
	}
	for i, s := range steps {
		if _, err := c.Act(ctx, ns, "fraud", s.action, s.req); err != nil {
			t.Fatalf("%s through the admin API: %v", s.action, err)
		}
		waitWeights(ctx, t, vsAPI, s.want)
		if i == 0 {
			handEditDenied(ctx, t, kube, version, ns)
		}
	}
}

// handEditDenied has alice (who may edit VirtualServices) set 50/50 on the
// managed route: the webhook's guard, which decodes the object at the
// served version, denies it.
func handEditDenied(ctx context.Context, t *testing.T, kube *localenv.Env, version, ns string) {
	t.Helper()
	cfg, err := kube.ConfigForUser(rig.EngineerUser)
	if err != nil {
		t.Fatal(err)
	}
	api := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: version, Resource: "virtualservices"}).Namespace(ns)
	vs, err := api.Get(ctx, "fraud", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	dests := routes[0].(map[string]any)["route"].([]any)
	for _, d := range dests {
		d.(map[string]any)["weight"] = int64(50)
	}
	_ = unstructured.SetNestedSlice(vs.Object, routes, "spec", "http")
	_, err = api.Update(ctx, vs, metav1.UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), "fulcrumctl") {
		t.Fatalf("a hand edit of the managed weights: %v, want a denial naming fulcrumctl", err)
	}
}

const drDoc = `
apiVersion: networking.istio.io/%s
kind: DestinationRule
metadata: {name: fraud, namespace: %s}
spec:
  host: fraud
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
`

const vsDoc = `
apiVersion: networking.istio.io/%s
kind: VirtualService
metadata: {name: fraud, namespace: %s}
spec:
  hosts: [fraud]
  http:
    - name: predict
      route:
        - destination: {host: fraud, subset: v1}
          weight: 100
        - destination: {host: fraud, subset: v2}
          weight: 0
`

// model creates the Service and one Deployment per version (kwok turns the
// pods Ready).
func model(ctx context.Context, t *testing.T, kube *localenv.Env, ns string) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "fraud"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := kube.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2"} {
		lbl := map[string]string{"app": "fraud", "version": v}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "fraud-" + v, Namespace: ns},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: lbl},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "model", Image: "fraud:" + v}}}}},
		}
		if _, err := kube.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitWeights waits until the VirtualService's first route has want.
func waitWeights(ctx context.Context, t *testing.T, api dynamic.ResourceInterface, want map[string]int64) {
	t.Helper()
	var got map[string]int64
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		vs, err := api.Get(ctx, "fraud", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]int64{}
		routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		for _, d := range routes[0].(map[string]any)["route"].([]any) {
			m := d.(map[string]any)
			subset, _, _ := unstructured.NestedString(m, "destination", "subset")
			w, _, _ := unstructured.NestedInt64(m, "weight")
			got[subset] = w
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("VirtualService weights %v, want %v", got, want)
}

func decode(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}
