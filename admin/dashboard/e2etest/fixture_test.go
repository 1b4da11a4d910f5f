package e2etest

import (
	"context"
	"fmt"
	"testing"
	"time"

	networkingapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fulcrum-ml/fulcrum/admin/admintest"
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// model is one served model in its own namespace, set up as a user would:
// a Service, a DestinationRule whose subsets v1 and v2 select pods by their
// version label, a VirtualService with one http route sending everything to
// v1, and a Deployment per version whose pods kwok makes Ready.
type model struct {
	t     *testing.T
	ns    string
	name  string
	c     client.Client
	istio istioclient.Interface
}

func (m *model) host() string { return fmt.Sprintf("%s.%s.svc.cluster.local", m.name, m.ns) }

func newModel(t *testing.T, ctx context.Context) *model {
	t.Helper()
	c, err := client.New(env.Config, client.Options{Scheme: admintest.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ic, err := istioclient.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := env.CreateNamespace(ctx, "dash")
	if err != nil {
		t.Fatal(err)
	}
	m := &model{t: t, ns: ns, name: "fraud", c: c, istio: ic}
	labels := map[string]string{"app": m.name}
	m.create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: m.name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	})
	if _, err := ic.NetworkingV1().DestinationRules(ns).Create(ctx, &networkingv1.DestinationRule{
		ObjectMeta: metav1.ObjectMeta{Name: m.name},
		Spec: networkingapi.DestinationRule{
			Host: m.host(),
			Subsets: []*networkingapi.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create DestinationRule: %v", err)
	}
	if _, err := ic.NetworkingV1().VirtualServices(ns).Create(ctx, &networkingv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: m.name},
		Spec: networkingapi.VirtualService{
			Hosts: []string{m.host()},
			Http: []*networkingapi.HTTPRoute{{
				Name: "predict",
				Route: []*networkingapi.HTTPRouteDestination{
					{Destination: &networkingapi.Destination{Host: m.host(), Subset: "v1"}, Weight: 100},
				},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create VirtualService: %v", err)
	}
	for _, v := range []string{"v1", "v2"} {
		m.deployment(ctx, v, 2)
	}
	for _, v := range []string{"v1", "v2"} {
		m.waitAvailable(ctx, m.name+"-"+v, 2)
	}
	return m
}

func (m *model) create(ctx context.Context, o client.Object) {
	m.t.Helper()
	if err := m.c.Create(ctx, o); err != nil {
		m.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

func (m *model) deployment(ctx context.Context, version string, replicas int32) {
	m.t.Helper()
	labels := map[string]string{"app": m.name, "version": version}
	m.create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: m.name + "-" + version, Namespace: m.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "model", Image: "fraud-model:" + version}}},
			},
		},
	})
}

func (m *model) waitAvailable(ctx context.Context, name string, replicas int32) {
	m.t.Helper()
	var d appsv1.Deployment
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout(), true, func(ctx context.Context) (bool, error) {
		if err := m.c.Get(ctx, types.NamespacedName{Namespace: m.ns, Name: name}, &d); err != nil {
			return false, nil
		}
		return d.Status.ReadyReplicas == replicas && d.Status.AvailableReplicas == replicas, nil
	})
	if err != nil {
		m.t.Fatalf("Deployment %s/%s not available: status %+v: %v", m.ns, name, d.Status, err)
	}
}

// rollout creates the ModelRollout moving traffic from v1 to v2 in steps;
// the VirtualService has one http route, so it is not named.
func (m *model) rollout(ctx context.Context, steps []int32, minStep time.Duration) {
	m.t.Helper()
	m.create(ctx, &v1alpha1.ModelRollout{
		ObjectMeta: metav1.ObjectMeta{Name: m.name, Namespace: m.ns},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService:  &v1alpha1.VirtualServiceRef{Name: m.name},
			DestinationRule: m.name,
			Stable:          "v1",
			Candidate:       "v2",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{
				Steps: steps, MinStepDuration: metav1.Duration{Duration: minStep},
			}},
		},
	})
}

func (m *model) get(ctx context.Context) *v1alpha1.ModelRollout {
	m.t.Helper()
	mr := &v1alpha1.ModelRollout{}
	if err := m.c.Get(ctx, types.NamespacedName{Namespace: m.ns, Name: m.name}, mr); err != nil {
		m.t.Fatal(err)
	}
	return mr
}

// routeWeights reads the weight per subset of the VirtualService's route.
func (m *model) routeWeights(ctx context.Context) map[string]int32 {
	m.t.Helper()
	vs, err := m.istio.NetworkingV1().VirtualServices(m.ns).Get(ctx, m.name, metav1.GetOptions{})
	if err != nil {
		m.t.Fatal(err)
	}
	out := map[string]int32{}
	for _, r := range vs.Spec.GetHttp() {
		for _, d := range r.GetRoute() {
			out[d.GetDestination().GetSubset()] += d.GetWeight()
		}
	}
	return out
}

// eventually polls cond until it holds, failing the test after timeout().
func (m *model) eventually(ctx context.Context, what string, cond func() bool) {
	m.t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout(), true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		m.t.Fatalf("waiting %s for %s: %v", timeout(), what, err)
	}
}
