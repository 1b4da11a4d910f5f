package router_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
	"github.com/fulcrum-ml/fulcrum/router"
	"github.com/fulcrum-ml/fulcrum/router/gatewayapi"
	"github.com/fulcrum-ml/fulcrum/router/istio"
)

// implementation is one router with a cluster in which a rollout's route
// object splits traffic between versions v1 and v2 (with fields Fulcrum
// must never touch), and the rollout.
type implementation struct {
	name    string
	objects string // YAML documents
	rollout v1alpha1.ModelRolloutSpec
	build   func(c client.Client) router.Router
}

var implementations = []implementation{
	{
		name: "istio",
		objects: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fraud, namespace: ml}
spec:
  hosts: [fraud]
  http:
  - name: other
    match: [{headers: {x-team: {exact: risk}}}]
    route: [{destination: {host: fraud, subset: v1}}]
  - name: primary
    timeout: 2s
    retries: {attempts: 3, perTryTimeout: 500ms}
    route:
    - destination: {host: fraud, subset: v1, port: {number: 8080}}
      weight: 90
      headers: {response: {set: {x-version: v1}}}
    - destination: {host: fraud, subset: v2, port: {number: 8080}}
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fraud, namespace: ml}
spec:
  host: fraud
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: v1
kind: Service
metadata: {name: fraud, namespace: ml}
spec: {selector: {app: fraud}, ports: [{port: 8080}]}
`,
		rollout: v1alpha1.ModelRolloutSpec{VirtualService: &v1alpha1.VirtualServiceRef{Name: "fraud", Routes: []string{"primary"}}, DestinationRule: "fraud", Stable: "v1", Candidate: "v2"},
		build: func(c client.Client) router.Router {
			return istio.New(istio.Config{Reader: c, Writer: c})
		},
	},
	gatewayImplementation("HTTPRoute", "httproute", `
    matches: [{path: {type: PathPrefix, value: /predict}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-model, value: fraud}]}}]
    timeouts: {request: 2s}`),
	gatewayImplementation("GRPCRoute", "grpcroute", `
    matches: [{method: {service: inference.GRPCInferenceService, method: ModelInfer}}]`),
}

func gatewayImplementation(kind, name, ruleExtras string) implementation {
	services := ""
	for _, v := range []string{"v1", "v2"} {
		services += `
---
apiVersion: v1
kind: Service
metadata: {name: fraud-` + v + `, namespace: ml}
spec: {selector: {app: fraud, version: ` + v + `}, ports: [{port: 8080}]}`
	}
	ref := &v1alpha1.GatewayRouteRef{Name: "fraud", Rules: []string{"primary"}}
	spec := v1alpha1.ModelRolloutSpec{Stable: "fraud-v1", Candidate: "fraud-v2"}
	if kind == "HTTPRoute" {
		spec.HTTPRoute = ref
	} else {
		spec.GRPCRoute = ref
	}
	return implementation{
		name: name,
		objects: `
apiVersion: gateway.networking.k8s.io/v1
kind: ` + kind + `
metadata: {name: fraud, namespace: ml}
spec:
  parentRefs: [{group: "", kind: Service, name: fraud, port: 8080}]
  rules:
  - name: other
    backendRefs: [{name: fraud-v1, port: 8080}]
  - name: primary` + ruleExtras + `
    backendRefs:
    - {name: fraud-v1, port: 8080, weight: 90}
    - {name: fraud-v2, port: 8080, weight: 10}
` + services,
		rollout: spec,
		build: func(c client.Client) router.Router {
			return gatewayapi.New(gatewayapi.Config{Kind: kind, Reader: c, Writer: c})
		},
	}
}

func setup(t *testing.T, impl implementation) (client.Client, router.Router, *v1alpha1.ModelRollout, *unstructured.Unstructured) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	var route *unstructured.Unstructured
	for _, doc := range splitYAML(impl.objects) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if u.GetKind() == "Service" {
			var svc corev1.Service
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &svc); err != nil {
				t.Fatal(err)
			}
			b = b.WithObjects(&svc)
			continue
		}
		if u.GetName() == "fraud" && u.GetKind() != "DestinationRule" {
			route = u.DeepCopy()
		}
		b = b.WithObjects(u)
	}
	c := b.Build()
	mr := &v1alpha1.ModelRollout{ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: "ml"}, Spec: impl.rollout}
	return c, impl.build(c), mr, route
}

// Every router reads back the weights it writes, writes nothing when the
// weights are already there, and changes nothing but weights.
func TestRoutersReadBackIdempotentAndLeaveOtherFields(t *testing.T) {
	ctx := context.Background()
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			c, rt, mr, before := setup(t, impl)
			st, err := rt.Read(ctx, mr)
			if err != nil || st.Problem != "" {
				t.Fatalf("Read: %v %s", err, st.Problem)
			}
			stable, cand := mr.Spec.Stable, mr.Spec.Candidate
			if got := st.Weights["primary"]; got[stable] != 90 || got[cand] != 10 {
				t.Fatalf("read %v, want %s=90 %s=10", st.Weights, stable, cand)
			}
			if _, ok := st.Weights["other"]; ok {
				t.Fatal("an unmanaged route was read as managed")
			}
			if len(st.Versions[cand].Selector) == 0 {
				t.Fatalf("version %s has no pod selector: %v", cand, st.Versions)
			}
			want := []v1alpha1.SubsetWeight{{Subset: stable, Weight: 40}, {Subset: cand, Weight: 60}}
			wrote, err := rt.Write(ctx, mr, st, router.Desired{Weights: want})
			if err != nil || !wrote {
				t.Fatalf("Write: wrote %v, %v", wrote, err)
			}
			st, err = rt.Read(ctx, mr)
			if err != nil || st.Problem != "" {
				t.Fatalf("Read after write: %v %s", err, st.Problem)
			}
			if got := st.Weights["primary"]; got[stable] != 40 || got[cand] != 60 {
				t.Fatalf("read back %v, want %s=40 %s=60", st.Weights, stable, cand)
			}
			if wrote, err := rt.Write(ctx, mr, st, router.Desired{Weights: want}); err != nil || wrote {
				t.Fatalf("second Write of the same weights: wrote %v, %v", wrote, err)
			}
			after := before.DeepCopy()
			if err := c.Get(ctx, client.ObjectKeyFromObject(before), after); err != nil {
				t.Fatal(err)
			}
			if a, b := withoutWeights(t, before), withoutWeights(t, after); a != b {
				t.Errorf("fields other than weights changed:\nbefore %s\nafter  %s", a, b)
			}
			// The pure read agrees with Read.
			rw, err := rt.Weights(after, mr.Spec.RouteRef().Routes)
			if err != nil || !router.WeightsEqual(rw["primary"], st.Weights["primary"]) {
				t.Errorf("Weights = %v, %v; Read said %v", rw, err, st.Weights)
			}
		})
	}
}

// A version that gets traffic and is not listed is added; versions at 0
// stay listed.
func TestRoutersAddAVersionAndKeepZeroes(t *testing.T) {
	ctx := context.Background()
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			_, rt, mr, _ := setup(t, impl)
			st, err := rt.Read(ctx, mr)
			if err != nil || st.Problem != "" {
				t.Fatalf("Read: %v %s", err, st.Problem)
			}
			if _, err := rt.Write(ctx, mr, st, router.Desired{Weights: []v1alpha1.SubsetWeight{{Subset: mr.Spec.Stable, Weight: 100}}}); err != nil {
				t.Fatal(err)
			}
			st, _ = rt.Read(ctx, mr)
			got := st.Weights["primary"]
			if w, listed := got[mr.Spec.Candidate]; !listed || w != 0 || got[mr.Spec.Stable] != 100 {
				t.Fatalf("after rollback: %v, want %s=100 and %s listed at 0", got, mr.Spec.Stable, mr.Spec.Candidate)
			}
		})
	}
}

// A missing route object is a Problem naming the field, not an error.
func TestRoutersReportAMissingObject(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			_, rt, mr, _ := setup(t, impl)
			mr.Spec.VirtualService, mr.Spec.HTTPRoute, mr.Spec.GRPCRoute = renamed(mr.Spec)
			st, err := rt.Read(context.Background(), mr)
			if err != nil {
				t.Fatal(err)
			}
			if st.Problem == "" || st.Object != nil {
				t.Fatalf("Read of a missing object: problem %q", st.Problem)
			}
		})
	}
}

func renamed(s v1alpha1.ModelRolloutSpec) (*v1alpha1.VirtualServiceRef, *v1alpha1.GatewayRouteRef, *v1alpha1.GatewayRouteRef) {
	g := func(r *v1alpha1.GatewayRouteRef) *v1alpha1.GatewayRouteRef {
		if r == nil {
			return nil
		}
		return &v1alpha1.GatewayRouteRef{Name: "missing"}
	}
	var vs *v1alpha1.VirtualServiceRef
	if s.VirtualService != nil {
		vs = &v1alpha1.VirtualServiceRef{Name: "missing"}
	}
	return vs, g(s.HTTPRoute), g(s.GRPCRoute)
}

func withoutWeights(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	spec := u.Object["spec"]
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(strip(v))
	return string(out)
}

func strip(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "weight")
		for k, e := range x {
			x[k] = strip(e)
		}
	case []any:
		for i, e := range x {
			x[i] = strip(e)
		}
	}
	return v
}

func splitYAML(s string) []string {
	var out []string
	for _, d := range strings.Split(s, "\n---") {
		if strings.TrimSpace(d) != "" {
			out = append(out, d)
		}
	}
	return out
}
