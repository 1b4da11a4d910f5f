package controller

import (
	"context"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

const testObjects = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fraud, namespace: ml}
spec:
  hosts: [fraud.ml.svc.cluster.local]
  http:
    - name: predict
      timeout: 2s
      route:
        - destination: {host: fraud.ml.svc.cluster.local, subset: v1}
          weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: ml}
spec:
  host: fraud.ml.svc.cluster.local
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
`

func testScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func istioObjects(t *testing.T) []client.Object {
	var out []client.Object
	for _, doc := range splitYAML(testObjects) {
		raw, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func splitYAML(s string) []string {
	var out []string
	cur := ""
	for _, line := range splitLines(s) {
		if line == "---" {
			out = append(out, cur)
			cur = ""
			continue
		}
		cur += line + "\n"
	}
	return append(out, cur)
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func readyPod(name, version string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml", Labels: map[string]string{"app": "fraud", "version": version}},
		Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func testRollout() *v1alpha1.ModelRollout {
	return &v1alpha1.ModelRollout{
		// An existing rollout: the finalizer was added by an earlier reconcile.
		ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: "ml", Finalizers: []string{Finalizer}},
		Spec: v1alpha1.ModelRolloutSpec{
			VirtualService:  &v1alpha1.VirtualServiceRef{Name: "fraud", Routes: []string{"predict"}},
			DestinationRule: "fraud", Stable: "v1", Candidate: "v2",
			Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{Steps: []int32{5, 50, 100}, MinStepDuration: metav1.Duration{Duration: time.Minute}}},
		},
	}
}

type recorded struct{ reasons []string }

func (r *recorded) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, _ string, _ ...interface{}) {
	r.reasons = append(r.reasons, reason)
}

func getVS(t *testing.T, c client.Client) *unstructured.Unstructured {
	t.Helper()
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"})
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: "ml", Name: "fraud"}, vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func vsWeights(t *testing.T, c client.Client) map[string]int32 {
	t.Helper()
	dr := &unstructured.Unstructured{}
	dr.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"})
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: "ml", Name: "fraud"}, dr); err != nil {
		t.Fatal(err)
	}
	typed, err := istio.DecodeDestinationRule(dr)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := istio.ReadWeights(getVS(t, c), istio.Target{Routes: []string{"predict"}, DestinationRule: typed})
	if err != nil {
		t.Fatal(err)
	}
	return rw["predict"]
}

// TestVirtualServiceConflictRetriesOnFreshRead injects a concurrent writer:
// the first VirtualService update finds that someone else changed the object
// (a label here) and gets a Conflict. The retry must read the object fresh,
// keep the other writer's change and still set the weights.
func TestVirtualServiceConflictRetriesOnFreshRead(t *testing.T) {
	ctx := context.Background()
	vsUpdates := 0
	base := fake.NewClientBuilder().WithScheme(testScheme(t)).WithIndex(&v1alpha1.ModelRollout{}, IndexRouteObject, IndexRouteObjectOf).
		WithObjects(append(istioObjects(t), testRollout(), readyPod("a", "v1"), readyPod("b", "v2"))...).
		WithStatusSubresource(&v1alpha1.ModelRollout{}).Build()
	c := interceptor.NewClient(base, interceptor.Funcs{
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if obj.GetObjectKind().GroupVersionKind().Kind == "VirtualService" {
				vsUpdates++
				if vsUpdates == 1 {
					other := getVS(t, cl)
					other.SetLabels(map[string]string{"edited-by": "someone-else"})
					if err := cl.Update(ctx, other); err != nil {
						t.Fatalf("concurrent writer: %v", err)
					}
					return cl.Update(ctx, obj, opts...) // stale resourceVersion: Conflict
				}
			}
			return cl.Update(ctx, obj, opts...)
		},
	})
	rec := &recorded{}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC))
	r, err := New(Config{Client: c, APIReader: c, Recorder: rec, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ml", Name: "fraud"}})
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if vsUpdates != 2 {
		t.Fatalf("VirtualService updates = %d, want 2 (one conflict, one retry)", vsUpdates)
	}
	vs := getVS(t, c)
	if vs.GetLabels()["edited-by"] != "someone-else" {
		t.Fatalf("retry lost the concurrent edit: labels %v", vs.GetLabels())
	}
	if w := vsWeights(t, c); w["v1"] != 95 || w["v2"] != 5 {
		t.Fatalf("weights %v", w)
	}
	if http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http"); len(http) != 1 || http[0].(map[string]any)["timeout"] != "2s" {
		t.Fatalf("route lost its timeout: %v", http)
	}
	mr := &v1alpha1.ModelRollout{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "ml", Name: "fraud"}, mr); err != nil {
		t.Fatal(err)
	}
	if mr.Status.Phase != v1alpha1.PhaseProgressing || len(mr.Status.History) != 1 || res.RequeueAfter != time.Minute {
		t.Fatalf("status %s history %d requeue %v", mr.Status.Phase, len(mr.Status.History), res.RequeueAfter)
	}
	if len(rec.reasons) != 1 || rec.reasons[0] != "RolloutStarted" {
		t.Fatalf("events %v", rec.reasons)
	}
}

// conflictOnce returns a client whose first status write fails with a
// conflict after meddle has changed the stored rollout (as a person or
// another writer would have, between the reconcile's read and its write).
func conflictOnce(t *testing.T, meddle func(context.Context, client.Client, *v1alpha1.ModelRollout)) client.Client {
	base := fake.NewClientBuilder().WithScheme(testScheme(t)).WithIndex(&v1alpha1.ModelRollout{}, IndexRouteObject, IndexRouteObjectOf).
		WithObjects(append(istioObjects(t), testRollout(), readyPod("a", "v1"), readyPod("b", "v2"))...).
		WithStatusSubresource(&v1alpha1.ModelRollout{}).Build()
	conflicts := 0
	return interceptor.NewClient(base, interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, cl client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			if conflicts == 0 {
				conflicts++
				stored := &v1alpha1.ModelRollout{}
				if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), stored); err != nil {
					t.Fatal(err)
				}
				meddle(ctx, cl, stored)
				return apierrors.NewConflict(schema.GroupResource{Group: "fulcrum.dev", Resource: "modelrollouts"}, obj.GetName(), nil)
			}
			return cl.SubResource(sub).Update(ctx, obj, opts...)
		},
	})
}

// TestStatusConflictAfterASpecEditKeepsTheDecision: the first step is on
// the mesh when the status write meets a conflict, because a person edited
// the spec meanwhile. The decision is written onto the fresh copy: lost,
// the next reconcile would take the controller's own 95/5 for weights to
// adopt (a manual split, the canary stuck).
func TestStatusConflictAfterASpecEditKeepsTheDecision(t *testing.T) {
	ctx := context.Background()
	c := conflictOnce(t, func(ctx context.Context, cl client.Client, mr *v1alpha1.ModelRollout) {
		mr.Labels = map[string]string{"team": "fraud"}
		if err := cl.Update(ctx, mr); err != nil {
			t.Fatal(err)
		}
	})
	rec := &recorded{}
	r, _ := New(Config{Client: c, Recorder: rec, Clock: clocktesting.NewFakeClock(time.Now())})
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ml", Name: "fraud"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	mr := &v1alpha1.ModelRollout{}
	_ = c.Get(ctx, req.NamespacedName, mr)
	if len(mr.Status.History) != 1 || mr.Status.History[0].Type != v1alpha1.HistoryStarted || mr.Status.Phase != v1alpha1.PhaseProgressing {
		t.Fatalf("phase %s, history %+v: want Progressing after one Started entry", mr.Status.Phase, mr.Status.History)
	}
	if mr.Labels["team"] != "fraud" || len(rec.reasons) != 1 {
		t.Fatalf("labels %v, events %v", mr.Labels, rec.reasons)
	}
	if w := vsWeights(t, c); w["v2"] != 5 {
		t.Fatalf("weights %v", w)
	}
}

// TestStatusConflictWithAnotherStatusDecidesAgain: when someone else wrote
// the status meanwhile (two controllers during a leader change), the
// decision is dropped and made again on a fresh copy, without events.
func TestStatusConflictWithAnotherStatusDecidesAgain(t *testing.T) {
	ctx := context.Background()
	c := conflictOnce(t, func(ctx context.Context, cl client.Client, mr *v1alpha1.ModelRollout) {
		mr.Status.Message = "written by another controller"
		if err := cl.Status().Update(ctx, mr); err != nil {
			t.Fatal(err)
		}
	})
	rec := &recorded{}
	r, _ := New(Config{Client: c, Recorder: rec, Clock: clocktesting.NewFakeClock(time.Now())})
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ml", Name: "fraud"}}
	res, err := r.Reconcile(ctx, req)
	if err != nil || res.RequeueAfter != conflictRetryDelay || len(rec.reasons) != 0 {
		t.Fatalf("conflict: res %+v err %v events %v", res, err, rec.reasons)
	}
	mr := &v1alpha1.ModelRollout{}
	_ = c.Get(ctx, req.NamespacedName, mr)
	if mr.Status.Message != "written by another controller" || len(mr.Status.History) != 0 {
		t.Fatalf("the other writer's status was overwritten: %+v", mr.Status)
	}
}

// TestMissingDestinationRuleFailsWithoutWrites checks nothing is half-written.
func TestMissingDestinationRuleFailsWithoutWrites(t *testing.T) {
	ctx := context.Background()
	objs := istioObjects(t)[:1]
	base := fake.NewClientBuilder().WithScheme(testScheme(t)).WithIndex(&v1alpha1.ModelRollout{}, IndexRouteObject, IndexRouteObjectOf).
		WithObjects(append(objs, testRollout())...).
		WithStatusSubresource(&v1alpha1.ModelRollout{}).Build()
	c := interceptor.NewClient(base, interceptor.Funcs{
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			t.Fatalf("unexpected update of %T", obj)
			return nil
		},
	})
	r, _ := New(Config{Client: c, Clock: clocktesting.NewFakeClock(time.Now())})
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ml", Name: "fraud"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	mr := &v1alpha1.ModelRollout{}
	_ = c.Get(ctx, req.NamespacedName, mr)
	if mr.Status.Phase != v1alpha1.PhaseFailed || mr.Status.Message != "DestinationRule ml/fraud not found: create it with one subset per model version (spec.destinationRule)" {
		t.Fatalf("phase %s message %q", mr.Status.Phase, mr.Status.Message)
	}
}

func TestServiceOfTheModel(t *testing.T) {
	dr := func(host string) *networkingv1.DestinationRule {
		d := &networkingv1.DestinationRule{}
		d.Namespace, d.Spec.Host = "ml", host
		return d
	}
	mr := &v1alpha1.ModelRollout{}
	mr.Namespace = "ml"
	for name, tc := range map[string]struct {
		domain, host, want string
	}{
		"short":                            {host: "fraud", want: "fraud"},
		"full":                             {host: "fraud.ml.svc.cluster.local", want: "fraud"},
		"another namespace":                {host: "fraud.other.svc.cluster.local", want: ""},
		"name.namespace is no Service":     {host: "fraud.ml", want: ""},
		"custom domain, full":              {domain: "corp.internal", host: "fraud.ml.svc.corp.internal", want: "fraud"},
		"custom domain, default full name": {domain: "corp.internal", host: "fraud.ml.svc.cluster.local", want: ""},
		"default domain, custom full name": {host: "fraud.ml.svc.corp.internal", want: ""},
	} {
		if _, err := New(Config{Client: fake.NewClientBuilder().Build(), ClusterDomain: tc.domain}); err != nil {
			t.Fatal(err)
		}
		d := dr(tc.host)
		if got := istio.ClusterDomain(tc.domain).Service(d.Spec.GetHost(), d.Namespace); got != tc.want {
			t.Errorf("%s: service(%q) in %q = %q, want %q", name, tc.host, tc.domain, got, tc.want)
		}
	}
	mr.Spec.Service = "scorer"
	if got := (&world{}).service(mr); got != "scorer" {
		t.Errorf("spec.service is the model's Service, got %q", got)
	}
	if _, err := New(Config{Client: fake.NewClientBuilder().Build(), ClusterDomain: "svc.cluster.local"}); err == nil {
		t.Error("New accepted cluster domain svc.cluster.local")
	}
}

// TestPromotionConflictLeavesTheMeshAlone: the spec update of a promotion
// meets a conflict (the reconcile read a stale copy). Nothing may have moved
// on the mesh: the candidate stays at the last step's weight until a
// reconcile on a fresh copy promotes it. Written before the spec, the mesh
// was at 100% while status said 50%, and the next reconcile put 50% back.
func TestPromotionConflictLeavesTheMeshAlone(t *testing.T) {
	ctx := context.Background()
	base := fake.NewClientBuilder().WithScheme(testScheme(t)).WithIndex(&v1alpha1.ModelRollout{}, IndexRouteObject, IndexRouteObjectOf).
		WithObjects(append(istioObjects(t), testRollout(), readyPod("a", "v1"), readyPod("b", "v2"))...).
		WithStatusSubresource(&v1alpha1.ModelRollout{}).Build()
	conflicts := 0
	c := interceptor.NewClient(base, interceptor.Funcs{
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if mr, ok := obj.(*v1alpha1.ModelRollout); ok && mr.Spec.Stable == "v2" && conflicts == 0 {
				conflicts++
				return apierrors.NewConflict(schema.GroupResource{Group: "fulcrum.dev", Resource: "modelrollouts"}, obj.GetName(), nil)
			}
			return cl.Update(ctx, obj, opts...)
		},
	})
	clk := clocktesting.NewFakeClock(time.Now())
	r, _ := New(Config{Client: c, Recorder: &recorded{}, Clock: clk})
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ml", Name: "fraud"}}
	for _, want := range []int32{5, 50} {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
		if w := vsWeights(t, c); w["v2"] != want {
			t.Fatalf("weights %v, want v2 at %d", w, want)
		}
		clk.Step(time.Minute)
	}
	res, err := r.Reconcile(ctx, req)
	if err != nil || conflicts != 1 || res.RequeueAfter != conflictRetryDelay {
		t.Fatalf("promotion: res %+v err %v conflicts %d", res, err, conflicts)
	}
	if w := vsWeights(t, c); w["v2"] != 50 {
		t.Fatalf("after a conflicted promotion the mesh has %v, want the last step's 50%% untouched", w)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	mr := &v1alpha1.ModelRollout{}
	_ = c.Get(ctx, req.NamespacedName, mr)
	if w := vsWeights(t, c); w["v2"] != 100 || mr.Spec.Stable != "v2" || mr.Status.Phase != v1alpha1.PhasePromoted {
		t.Fatalf("second try: weights %v, stable %s, phase %s; want v2 100, stable v2, Promoted", w, mr.Spec.Stable, mr.Status.Phase)
	}
}
